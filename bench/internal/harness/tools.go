package harness

import (
	"encoding/csv"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Metrics is what one load run reports. Latencies are in microseconds; a
// negative latency means the tool does not report it.
type Metrics struct {
	RPS      float64 `json:"rps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	P999us   float64 `json:"p999_us"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	WindowS  float64 `json:"window_s"`
}

// ParseResult parses the `RESULT key=value …` line of `bench load`.
func ParseResult(out string) (Metrics, error) {
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "RESULT ") {
			line = l
		}
	}
	if line == "" {
		return Metrics{}, fmt.Errorf("harness: no RESULT line in %q", tail(out))
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(line)[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		}
	}
	num := func(k string) float64 {
		v, _ := strconv.ParseFloat(kv[k], 64)
		return v
	}
	return Metrics{
		RPS: num("rps"), P50us: num("p50_us"), P99us: num("p99_us"), P999us: num("p999_us"),
		Requests: int64(num("requests")), Errors: int64(num("errors")), WindowS: num("window_s"),
	}, nil
}

var (
	wrkRPS  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkReqs = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkSock = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2 = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// ParseWrk parses `wrk --latency` output (wrk has no p99.9: it is -1).
func ParseWrk(out string) (Metrics, error) {
	m := Metrics{P50us: -1, P99us: -1, P999us: -1}
	r := wrkRPS.FindStringSubmatch(out)
	if r == nil {
		return m, fmt.Errorf("harness: no Requests/sec in wrk output %q", tail(out))
	}
	m.RPS, _ = strconv.ParseFloat(r[1], 64)
	if r := wrkReqs.FindStringSubmatch(out); r != nil {
		m.Requests, _ = strconv.ParseInt(r[1], 10, 64)
		m.WindowS = toUS(r[2], r[3]) / 1e6
	}
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		v := toUS(p[2], p[3])
		if p[1] == "50" {
			m.P50us = v
		} else {
			m.P99us = v
		}
	}
	if r := wrkSock.FindStringSubmatch(out); r != nil {
		for _, s := range r[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			m.Errors += n
		}
	}
	if r := wrkNon2.FindStringSubmatch(out); r != nil {
		n, _ := strconv.ParseInt(r[1], 10, 64)
		m.Errors += n
	}
	return m, nil
}

func toUS(v, unit string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "ms":
		return f * 1e3
	case "s":
		return f * 1e6
	case "m":
		return f * 60e6
	}
	return f
}

// ParseRedisBenchmark parses `redis-benchmark --csv` output (one test) into
// metrics; redis-benchmark reports no p99.9 (-1) and counts no errors.
func ParseRedisBenchmark(out string, requests int64) (Metrics, error) {
	m := Metrics{P50us: -1, P99us: -1, P999us: -1, Requests: requests}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		return m, fmt.Errorf("harness: redis-benchmark csv: %v in %q", err, tail(out))
	}
	var head []string
	for _, row := range rows {
		if len(row) > 1 && row[0] == "test" {
			head = row
			continue
		}
		if head == nil || len(row) != len(head) {
			continue
		}
		for i, h := range head {
			f, _ := strconv.ParseFloat(row[i], 64)
			switch h {
			case "rps":
				m.RPS = f
			case "p50_latency_ms":
				m.P50us = f * 1e3
			case "p99_latency_ms":
				m.P99us = f * 1e3
			}
		}
		if m.RPS > 0 {
			m.WindowS = float64(requests) / m.RPS
		}
		return m, nil
	}
	return m, fmt.Errorf("harness: no result row in redis-benchmark output %q", tail(out))
}

func tail(s string) string {
	if len(s) > 400 {
		return "…" + s[len(s)-400:]
	}
	return s
}
