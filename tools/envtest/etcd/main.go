// Command etcd is upstream's etcd server main, pinned to the release Kubernetes tests against.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
