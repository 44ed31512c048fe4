// Command jitaccess is the Azure Functions custom handler of jitaccess and its
// command-line companion. main.go only reads the command line: the wiring of
// the deployed handler lives in internal/app, the sandbox's in
// internal/sandbox (linked only with -tags sandbox, sandbox_cmd.go).
//
//	jitaccess                 serve the Functions host (FUNCTIONS_CUSTOMHANDLER_PORT)
//	jitaccess sandbox         the local sandbox of 'make run' (builds with -tags sandbox)
//	jitaccess send ...        send a request event (see 'jitaccess send --help')
//	jitaccess get <id>        read one request from the API
//	jitaccess list ...        list requests from the API
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/jitaccess/jitaccess/internal/app"
	"github.com/jitaccess/jitaccess/internal/cli"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// sandboxCommand runs 'jitaccess sandbox'; nil unless the build has
// -tags sandbox (sandbox_cmd.go).
var sandboxCommand func(ctx context.Context, args []string) int

const usage = `jitaccess — just-in-time, approval-gated membership of privileged Entra groups

usage:
  jitaccess                 run as the Azure Functions custom handler (the host starts it)
  jitaccess sandbox [flags] run the local sandbox ('make run'; builds with -tags sandbox); --help for flags
  jitaccess send <type> ... send a request event (--wait: wait for its outcome); 'jitaccess send --help'
  jitaccess get <id> ...    show one request (table; -o json); 'jitaccess get --help'
  jitaccess list ...        list requests (table; -o json); 'jitaccess list --help'
  jitaccess version
`

const noSandbox = `jitaccess: this build has no sandbox: the deployed binary carries no simulator.
Run 'make run', or build the sandbox with 'go build -tags sandbox -o jitaccess-sandbox .'
and run './jitaccess-sandbox sandbox'.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	cmd := ""
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "", "serve":
		return app.Serve(ctx, app.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Version: version})
	case "sandbox":
		if sandboxCommand == nil {
			fmt.Fprint(os.Stderr, noSandbox)
			return cli.ExitUsage
		}
		return sandboxCommand(ctx, args)
	case "send":
		return cli.Send(ctx, args, cli.Env{})
	case "get":
		return cli.Get(ctx, args, cli.Env{})
	case "list":
		return cli.List(ctx, args, cli.Env{})
	case "version", "--version":
		fmt.Println(version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "jitaccess: unknown command %q\n\n%s", cmd, usage)
	return cli.ExitUsage
}
