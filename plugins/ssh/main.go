package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	env := New(shared.Logger().Named("ssh"))
	shared.Serve(env)
	env.Close()
}
