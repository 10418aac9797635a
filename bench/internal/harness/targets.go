package harness

import (
	"fmt"
	"io"
)

// Target is one performance target: System's Metric divided by Ref's, per
// repetition of Workload in Section, compared with Limit.
type Target struct {
	// Goal states the target in words ("gyre-uring CPU/req ≤ 0.8× gnet").
	Goal string
	// Section and Workload name the samples' group.
	Section, Workload string
	// System and Ref are system names ("gyre-uring", "gnet").
	System, Ref string
	// Metric is "cpu" (server CPU µs per request), "p99" (p99 latency) or
	// "rps" (requests per second).
	Metric string
	// Limit is the claimed bound of the ratio; AtLeast claims ratio ≥ Limit,
	// otherwise ratio ≤ Limit.
	Limit   float64
	AtLeast bool
	// Absent, if set, says why System or Ref may be missing from a run of
	// Workload (the status then reads "not measured: "+Absent).
	Absent string
	// Skip, if set, says why the target cannot be measured by this run at
	// all (the status then reads "not measured: "+Skip).
	Skip string
}

// Target statuses.
const (
	// Met: at least MinReps paired repetitions and every one of them on the
	// claimed side of Limit (the ✓ rule of BENCHMARKING.md).
	Met = "met ✓"
	// NotShown: the median is on the claimed side but not every repetition
	// is, or there are fewer than MinReps.
	NotShown = "not met: not every repetition on the claimed side"
	// Missed: the median is on the wrong side of Limit.
	Missed = "missed"
	// NotMeasured: no paired repetition (workload or system not run).
	NotMeasured = "not measured"
)

// MinReps is the fewest paired repetitions a met target needs.
const MinReps = 5

// TargetResult is a Target evaluated on samples.
type TargetResult struct {
	Target
	Ratio  Stat
	Status string
}

func metric(s Sample, m string) float64 {
	switch m {
	case "cpu":
		return s.CPUPerReqUs
	case "p99":
		return s.P99us
	case "rps":
		return s.RPS
	}
	return -1
}

// EvalTargets evaluates each target on samples: the ratio of System's metric
// to Ref's in the same repetition, for every repetition where both ran
// without error.
func EvalTargets(samples []Sample, targets []Target) []TargetResult {
	var out []TargetResult
	for _, t := range targets {
		sys, ref := map[int]float64{}, map[int]float64{}
		ran := false
		for _, s := range samples {
			if s.Section != t.Section || s.Workload != t.Workload {
				continue
			}
			ran = true
			if s.Error != "" {
				continue
			}
			v := metric(s, t.Metric)
			if v <= 0 {
				continue
			}
			switch s.System {
			case t.System:
				sys[s.Rep] = v
			case t.Ref:
				ref[s.Rep] = v
			}
		}
		var rs []float64
		for rep, v := range sys {
			if r, ok := ref[rep]; ok {
				rs = append(rs, v/r)
			}
		}
		r := TargetResult{Target: t, Ratio: StatOf(rs)}
		claimed := func(x float64) bool {
			if t.AtLeast {
				return x >= t.Limit
			}
			return x <= t.Limit
		}
		switch {
		case t.Skip != "":
			r.Status = NotMeasured + ": " + t.Skip
			r.Ratio = StatOf(nil)
		case r.Ratio.N == 0 && !ran:
			r.Status = NotMeasured + ": " + notInRun
		case r.Ratio.N == 0 && t.Absent != "":
			r.Status = NotMeasured + ": " + t.Absent
		case r.Ratio.N == 0:
			r.Status = fmt.Sprintf("%s: no repetition where both %s and %s succeeded", NotMeasured, t.System, t.Ref)
		case !claimed(r.Ratio.Median) && r.Ratio.N < MinReps:
			r.Status = fmt.Sprintf("not met: %d repetitions (a finding needs %d), median on the wrong side", r.Ratio.N, MinReps)
		case !claimed(r.Ratio.Median):
			r.Status = Missed
		case r.Ratio.N >= MinReps && claimed(r.Ratio.Min) && claimed(r.Ratio.Max):
			r.Status = Met
		default:
			r.Status = NotShown
			if r.Ratio.N < MinReps {
				r.Status = fmt.Sprintf("not met: %d repetitions (a finding needs %d)", r.Ratio.N, MinReps)
			}
		}
		out = append(out, r)
	}
	return out
}

// notInRun is the status reason of a target whose workload did not run.
const notInRun = "workload not in this run"

// WriteTargets writes the targets as a markdown table; targets whose
// workload did not run (a filtered run) are summed up in one line after it.
func WriteTargets(w io.Writer, rs []TargetResult) {
	fmt.Fprintln(w, "| target | workload | measured ratio, median [min–max] (reps) | status |")
	fmt.Fprintln(w, "|---|---|---|---|")
	absent := 0
	defer func() {
		if absent > 0 {
			fmt.Fprintf(w, "\n%d more targets not measured: their workloads were not in this run.\n", absent)
		}
	}()
	for _, r := range rs {
		if r.Status == NotMeasured+": "+notInRun {
			absent++
			continue
		}
		m := "–"
		if r.Ratio.N > 0 {
			m = fmt.Sprintf("%.2f× [%.2f–%.2f] (%d)", r.Ratio.Median, r.Ratio.Min, r.Ratio.Max, r.Ratio.N)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.Goal, r.Workload, m, oneLine(r.Status))
	}
}
