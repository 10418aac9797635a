package main

import (
	"strings"

	"github.com/gyre-io/gyre/bench/internal/harness"
)

// issueTargets are the server-efficiency targets of issue 16, on the
// workloads of the main matrix (their names as in makePlan).
func issueTargets(cond conditions) []harness.Target {
	suffix := ""
	if strings.Contains(cond.MainSection, "loops") {
		suffix = "×" + strings.Fields(strings.TrimPrefix(cond.MainSection, "main, "))[0]
	}
	uring, epoll, gnet := "gyre-uring"+suffix, "gyre-epoll"+suffix, "gnet"+suffix
	sec := cond.MainSection
	noC := cond.CServer
	if noC == "" {
		noC = "no c-liburing row in this run"
	}
	cpu := func(goal, wl, sys, ref string, limit float64) harness.Target {
		return harness.Target{Goal: goal, Section: sec, Workload: wl, System: sys, Ref: ref, Metric: "cpu", Limit: limit}
	}
	var ts []harness.Target
	for _, wl := range []string{wEcho50, wPing16, wRB16, wHTTPWrk, wHTTPLoad} {
		ts = append(ts, cpu(uring+" CPU/req ≤ 0.8× "+gnet, wl, uring, gnet, 0.8))
	}
	for _, wl := range []string{wEcho50, wPingPong, wEcho64K, wEcho4K} {
		t := cpu(uring+" CPU/req ≤ 1.0× c-liburing", wl, uring, "c-liburing", 1.0)
		t.Absent = noC
		ts = append(ts, t)
	}
	ts = append(ts,
		cpu(uring+" CPU/req ≤ 1.0× "+gnet, wPingPong, uring, gnet, 1.0),
		harness.Target{Goal: uring + " p99 ≤ 1.0× " + gnet, Section: sec, Workload: wPingPong, System: uring, Ref: gnet, Metric: "p99", Limit: 1.0},
		cpu(uring+" CPU/req ≤ 0.9× "+gnet, wEcho64K, uring, gnet, 0.9),
	)
	for _, wl := range []string{wPing16, wRB16} {
		t := cpu(uring+" CPU/req ≤ 0.8× redis-server", wl, uring, "redis-server", 0.8)
		t.Absent = cond.RedisServer
		if t.Absent == "" {
			t.Absent = "no redis-server row in this run"
		}
		ts = append(ts, t)
	}
	for _, wl := range []string{wEcho50, wPingPong, wEcho64K, wPing16, wHTTPWrk} {
		ts = append(ts, cpu(epoll+" CPU/req ≤ 1.0× "+gnet+" (epoll ≥ gnet)", wl, epoll, gnet, 1.0))
	}
	for _, wl := range []string{wEcho50, wPing16} {
		t := harness.Target{Goal: uring + " req/s ≥ 1.5× net under an equal CPU quota", Section: sec, Workload: wl,
			System: uring, Ref: "net", Metric: "rps", Limit: 1.5, AtLeast: true}
		if cond.Quota == "" {
			t.Skip = "run with -quota (e.g. -quota 0.5)"
		}
		ts = append(ts, t)
	}
	return ts
}
