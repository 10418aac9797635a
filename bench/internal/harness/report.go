package harness

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Stat is a median with its range.
type Stat struct {
	Median, Min, Max float64
	N                int
}

// StatOf summarizes vs, ignoring negative values (not reported) and NaNs.
// N is 0 when nothing remains.
func StatOf(vs []float64) Stat {
	var xs []float64
	for _, v := range vs {
		if v >= 0 && !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return Stat{Median: -1, Min: -1, Max: -1}
	}
	slices.Sort(xs)
	med := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return Stat{Median: med, Min: xs[0], Max: xs[len(xs)-1], N: len(xs)}
}

// OneSided reports whether every value lies on the same side of 1 (the only
// kind of ratio BENCHMARKING.md accepts as a finding, with N >= 5).
func (s Stat) OneSided() bool { return s.N > 0 && (s.Max < 1 || s.Min > 1) }

// Row is one system's summary in one workload.
type Row struct {
	System               string
	RPS, P50, P99, P999  Stat
	CPU                  Stat // µs of server CPU per request
	User, Sys            Stat // its user-space (utime) and kernel (stime) shares
	CtxSw                Stat // server context switches per request
	RPSvsNet, CPUvsNet   Stat // per-repetition ratios against net
	RPSvsGnet, CPUvsGnet Stat // per-repetition ratios against gnet
	Errors               int64
	Failed               int
	FirstError           string
}

// Group is one (section, workload) table.
type Group struct {
	Section, Workload, Tool string
	Rows                    []Row
}

// Summarize groups samples by section and workload (in first-seen order) and
// systems in first-seen order.
func Summarize(samples []Sample) []Group {
	type key struct{ sec, wl string }
	var order []key
	by := map[key][]Sample{}
	for _, s := range samples {
		k := key{s.Section, s.Workload}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], s)
	}
	var groups []Group
	for _, k := range order {
		ss := by[k]
		g := Group{Section: k.sec, Workload: k.wl, Tool: ss[0].Tool}
		var systems []string
		bySys := map[string][]Sample{}
		for _, s := range ss {
			if _, ok := bySys[s.System]; !ok {
				systems = append(systems, s.System)
			}
			bySys[s.System] = append(bySys[s.System], s)
		}
		// The reference of a ratio is the system named like the impl ("net",
		// "gnet"), else the first system of that impl ("gnet×2").
		ref := func(impl string) map[int]Sample {
			name := impl
			if _, ok := bySys[name]; !ok {
				for _, sys := range systems {
					if bySys[sys][0].Impl == impl {
						name = sys
						break
					}
				}
			}
			m := map[int]Sample{}
			for _, s := range bySys[name] {
				if s.Error == "" {
					m[s.Rep] = s
				}
			}
			return m
		}
		netRef, gnetRef := ref("net"), ref("gnet")
		for _, name := range systems {
			r := Row{System: name}
			var rps, p50, p99, p999, cpu, user, sys, cs, rn, cn, rg, cg []float64
			for _, s := range bySys[name] {
				if s.Error != "" {
					r.Failed++
					if r.FirstError == "" {
						r.FirstError = s.Error
					}
					continue
				}
				r.Errors += s.Errors
				rps = append(rps, s.RPS)
				p50 = append(p50, s.P50us)
				p99 = append(p99, s.P99us)
				p999 = append(p999, s.P999us)
				cpu = append(cpu, s.CPUPerReqUs)
				user = append(user, s.UserPerReqUs)
				sys = append(sys, s.SysPerReqUs)
				cs = append(cs, s.CtxSwPerReq)
				if n, ok := netRef[s.Rep]; ok && n.RPS > 0 && n.CPUPerReqUs > 0 {
					rn = append(rn, s.RPS/n.RPS)
					cn = append(cn, s.CPUPerReqUs/n.CPUPerReqUs)
				}
				if n, ok := gnetRef[s.Rep]; ok && n.RPS > 0 && n.CPUPerReqUs > 0 {
					rg = append(rg, s.RPS/n.RPS)
					cg = append(cg, s.CPUPerReqUs/n.CPUPerReqUs)
				}
			}
			r.RPS, r.P50, r.P99, r.P999, r.CPU = StatOf(rps), StatOf(p50), StatOf(p99), StatOf(p999), StatOf(cpu)
			r.User, r.Sys, r.CtxSw = StatOf(user), StatOf(sys), StatOf(cs)
			r.RPSvsNet, r.CPUvsNet, r.RPSvsGnet, r.CPUvsGnet = StatOf(rn), StatOf(cn), StatOf(rg), StatOf(cg)
			g.Rows = append(g.Rows, r)
		}
		groups = append(groups, g)
	}
	return groups
}

func fmtNum(v float64) string {
	switch {
	case v < 0:
		return "–"
	case v >= 100000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 10000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtStat(s Stat) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func fmtRatio(s Stat, minReps int) string {
	if s.N == 0 {
		return "–"
	}
	mark := ""
	if s.N >= minReps && s.OneSided() {
		mark = " ✓"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.2f×%s", s.Median, mark)
	}
	return fmt.Sprintf("%.2f× [%.2f–%.2f]%s", s.Median, s.Min, s.Max, mark)
}

// WriteMarkdown writes one table per group.
func WriteMarkdown(w io.Writer, groups []Group) {
	section := ""
	for _, g := range groups {
		if g.Section != section {
			section = g.Section
			fmt.Fprintf(w, "\n## %s\n", section)
		}
		fmt.Fprintf(w, "\n### %s (client: %s)\n\n", g.Workload, toolName(g.Tool))
		fmt.Fprintln(w, "| system | req/s median [min–max] | req/s ×net | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | user µs/req | kernel µs/req | ctx sw/req | CPU ×net | CPU ×gnet | errors |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, r := range g.Rows {
			if r.RPS.N == 0 {
				fmt.Fprintf(w, "| %s | failed: %s | | | | | | | | | | | |\n", r.System, oneLine(r.FirstError))
				continue
			}
			errs := fmt.Sprint(r.Errors)
			if r.Failed > 0 {
				errs += fmt.Sprintf(" (+%d failed runs)", r.Failed)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.System,
				fmtStat(r.RPS), fmtRatio(r.RPSvsNet, 5), fmtStat(r.P50), fmtStat(r.P99), fmtStat(r.P999),
				fmtStat(r.CPU), fmtStat(r.User), fmtStat(r.Sys), fmtStat(r.CtxSw),
				fmtRatio(r.CPUvsNet, 5), fmtRatio(r.CPUvsGnet, 5), errs)
		}
	}
}

func toolName(t string) string {
	if t == "load" {
		return "bench load"
	}
	return t
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// FormatNum formats v compactly ("–" when negative).
func FormatNum(v float64) string { return fmtNum(v) }

// FormatStat formats s as "median [min–max]".
func FormatStat(s Stat) string { return fmtStat(s) }

// FormatRatio formats a ratio as "median× [min–max]", with " ✓" when at
// least MinReps values all lie on one side of 1.
func FormatRatio(s Stat) string { return fmtRatio(s, MinReps) }
