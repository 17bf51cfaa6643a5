// Command kube-controller-manager is upstream's main: the test node needs its Deployment,
// StatefulSet, Job, EndpointSlice and service-account token controllers.
package main

import (
	"os"
	_ "time/tzdata" // for CronJob's time zones

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugin
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
