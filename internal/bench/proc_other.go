//go:build !linux

package main

import (
	"errors"
	"syscall"
	"time"
)

func serverProcAttr() *syscall.SysProcAttr { return nil }

func clockTicks() (float64, error) { return 100, nil }

type procSet struct{ core, plugin int }

func findProcs(int) (procSet, error) {
	return procSet{}, errors.New("measuring CPU needs Linux's /proc")
}

func (procSet) sample(float64) (cpuSample, error) {
	return cpuSample{}, errors.New("measuring CPU needs Linux's /proc")
}

func selfCPU() time.Duration { return 0 }

func (procSet) switches() (int64, int64, error) {
	return 0, 0, errors.New("counting context switches needs Linux's /proc")
}

type loadMeter struct{}

func newLoadMeter(procSet, float64) (*loadMeter, error) {
	return nil, errors.New("measuring the machine's load needs Linux's /proc")
}

func (*loadMeter) otherCPUs() (float64, error) { return 0, nil }

func (*loadMeter) pause()  {}
func (*loadMeter) resume() {}

type procMem struct {
	RSS     int64 `json:"rss_bytes"`
	Threads int   `json:"threads"`
	FDs     int   `json:"fds"`
}

func readProcMem(int) (procMem, error) {
	return procMem{}, errors.New("reading a process's memory needs Linux's /proc")
}
