// Command vault is upstream's Vault main (github.com/hashicorp/vault/main.go), pinned for the test loop:
// tests start it with `server -dev` on a loopback port (tests/support/vault_server.py).
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
