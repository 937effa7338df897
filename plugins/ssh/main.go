package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	shared.VersionFlag("ptyhost-plugin-ssh")
	env := New(shared.Logger().Named("ssh"))
	shared.Serve(env)
	env.Close()
}
