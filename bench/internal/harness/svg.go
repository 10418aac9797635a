package harness

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

var palette = []string{"#1b9e77", "#7570b3", "#d95f02", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"}

// WriteSVG draws, for each group, the median throughput per system (bars with
// min–max whiskers), the median server CPU per request split into its
// user-space and kernel shares (stacked, whiskers: min–max of the total),
// and the median p50/p99/p99.9 latencies per system (bars on a log scale).
// The file is self-contained and opens in a browser.
func WriteSVG(w io.Writer, title string, groups []Group) error {
	const (
		width  = 1100
		rowH   = 260
		top    = 50
		chartW = 300
		chartH = 170
		leftX  = 60
		midX   = 420
		rightX = 780
	)
	height := top + rowH*len(groups) + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="10" y="40" fill="#555">bars: median over repetitions; whiskers: min–max. CPU per request: user space (solid) + kernel (lighter). Latency: p50 (solid), p99 (lighter), p99.9 (lightest), log scale.</text>`+"\n")
	colors := map[string]string{}
	color := func(sys string) string {
		if c, ok := colors[sys]; ok {
			return c
		}
		c := palette[len(colors)%len(palette)]
		colors[sys] = c
		return c
	}
	for gi, g := range groups {
		y0 := top + gi*rowH
		fmt.Fprintf(&b, `<text x="10" y="%d" font-size="13" font-weight="bold">%s — %s (client: %s)</text>`+"\n", y0+16, html.EscapeString(g.Section), html.EscapeString(g.Workload), html.EscapeString(toolName(g.Tool)))
		cy := y0 + 30
		// Throughput.
		maxRPS := 0.0
		for _, r := range g.Rows {
			maxRPS = math.Max(maxRPS, r.RPS.Max)
		}
		if maxRPS <= 0 {
			maxRPS = 1
		}
		axis(&b, leftX, cy, chartW, chartH, "req/s", func(f float64) string { return fmtNum(f * maxRPS) })
		n := len(g.Rows)
		slot := float64(chartW) / float64(max(n, 1))
		for i, r := range g.Rows {
			x := float64(leftX) + slot*float64(i) + slot*0.2
			bw := slot * 0.6
			label(&b, x+bw/2, cy+chartH+14, r.System)
			if r.RPS.N == 0 {
				continue
			}
			h := r.RPS.Median / maxRPS * chartH
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s req/s</title></rect>`+"\n",
				x, float64(cy+chartH)-h, bw, h, color(r.System), html.EscapeString(r.System), fmtStat(r.RPS))
			whisker(&b, x+bw/2, float64(cy+chartH)-r.RPS.Min/maxRPS*chartH, float64(cy+chartH)-r.RPS.Max/maxRPS*chartH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+bw/2, float64(cy+chartH)-h-3, fmtNum(r.RPS.Median))
		}
		// Server CPU per request: user (solid) + kernel (light), stacked.
		maxCPU := 0.0
		for _, r := range g.Rows {
			maxCPU = math.Max(maxCPU, r.CPU.Max)
		}
		if maxCPU <= 0 {
			maxCPU = 1
		}
		axis(&b, midX, cy, chartW, chartH, "server CPU µs/req", func(f float64) string { return fmtNum(f * maxCPU) })
		for i, r := range g.Rows {
			x := float64(midX) + slot*float64(i) + slot*0.2
			bw := slot * 0.6
			label(&b, x+bw/2, cy+chartH+14, r.System)
			if r.CPU.N == 0 {
				continue
			}
			base := float64(cy + chartH)
			hu := math.Max(r.User.Median, 0) / maxCPU * chartH
			hk := math.Max(r.Sys.Median, 0) / maxCPU * chartH
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: user %s µs/req</title></rect>`+"\n",
				x, base-hu, bw, hu, color(r.System), html.EscapeString(r.System), fmtStat(r.User))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.45"><title>%s: kernel %s µs/req</title></rect>`+"\n",
				x, base-hu-hk, bw, hk, color(r.System), html.EscapeString(r.System), fmtStat(r.Sys))
			whisker(&b, x+bw/2, base-r.CPU.Min/maxCPU*chartH, base-r.CPU.Max/maxCPU*chartH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+bw/2, base-r.CPU.Max/maxCPU*chartH-3, fmtNum(r.CPU.Median))
		}
		// Latency, log scale from the smallest to the largest value.
		lo, hi := math.Inf(1), 0.0
		for _, r := range g.Rows {
			for _, s := range []Stat{r.P50, r.P99, r.P999} {
				if s.N > 0 && s.Median > 0 {
					lo = math.Min(lo, s.Median)
					hi = math.Max(hi, s.Median)
				}
			}
		}
		if hi <= 0 {
			lo, hi = 1, 10
		}
		llo := math.Floor(math.Log10(lo))
		lhi := math.Ceil(math.Log10(hi))
		if lhi <= llo {
			lhi = llo + 1
		}
		scale := func(v float64) float64 { return (math.Log10(v) - llo) / (lhi - llo) * chartH }
		axis(&b, rightX, cy, chartW, chartH, "latency µs (log)", func(f float64) string {
			return fmtNum(math.Pow(10, llo+f*(lhi-llo)))
		})
		for i, r := range g.Rows {
			x := float64(rightX) + slot*float64(i) + slot*0.15
			bw := slot * 0.7 / 3
			label(&b, x+slot*0.35, cy+chartH+14, r.System)
			for j, s := range []Stat{r.P50, r.P99, r.P999} {
				if s.N == 0 || s.Median <= 0 {
					continue
				}
				h := math.Max(scale(s.Median), 1)
				op := []string{"1", "0.6", "0.35"}[j]
				name := []string{"p50", "p99", "p99.9"}[j]
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="%s"><title>%s %s: %s µs</title></rect>`+"\n",
					x+bw*float64(j), float64(cy+chartH)-h, bw*0.9, h, color(r.System), op, html.EscapeString(r.System), name, fmtStat(s))
			}
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func axis(b *strings.Builder, x, y, w, h int, name string, tick func(float64) string) {
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x, y, x, y+h, x, y+h, x+w, y+h)
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		ty := float64(y+h) - f*float64(h)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end" font-size="9">%s</text>`+"\n",
			x, ty, x+w, ty, x-4, ty+3, tick(f))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="10" fill="#555">%s</text>`+"\n", x, y-4, html.EscapeString(name))
}

func label(b *strings.Builder, x float64, y int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="10">%s</text>`+"\n", x, y, html.EscapeString(s))
}

func whisker(b *strings.Builder, x, y1, y2 float64) {
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>`+"\n",
		x, y1, x, y2, x-4, y1, x+4, y1, x-4, y2, x+4, y2)
}
