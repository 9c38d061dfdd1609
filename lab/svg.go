package lab

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
)

// Hand-written SVG charts for the demo and the benchmark: no plotting
// dependency, output that any browser shows.

// Series is one line of a LineChart.
type Series struct {
	Name  string
	Color string // CSS colour; default from a palette
	X, Y  []float64
	// Step draws a histogram-like step line (each Y holds from its X to
	// the next X).
	Step bool
}

// Marker is a labelled vertical line.
type Marker struct {
	X     float64
	Label string
	Color string
}

// Span is a shaded interval of the X axis.
type Span struct {
	X0, X1 float64
	Label  string
	Color  string
}

// LineChart is a chart of Y over X.
type LineChart struct {
	Title, XLabel, YLabel string
	Width, Height         int // default 900 x 420
	Series                []Series
	Markers               []Marker
	Spans                 []Span
	Notes                 []string // lines under the title
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"}

const (
	padLeft, padRight, padTop, padBottom = 70.0, 20.0, 50.0, 50.0
)

// niceStep returns a round step (1, 2 or 5 times a power of ten) giving
// about n intervals over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

type svgWriter struct{ bytes.Buffer }

func (w *svgWriter) f(format string, args ...any) { fmt.Fprintf(&w.Buffer, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

func (w *svgWriter) header(width, height int, title string, notes []string) {
	w.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	w.f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	w.f(`<text x="%d" y="20" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", width/2, esc(title))
	for i, n := range notes {
		w.f(`<text x="%d" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", width/2, 36+14*i, esc(n))
	}
}

// SVG renders the chart.
func (c LineChart) SVG() []byte {
	W, H := c.Width, c.Height
	if W == 0 {
		W = 900
	}
	if H == 0 {
		H = 420
	}
	top := padTop + 14*float64(max(len(c.Notes)-1, 0))
	x0, x1 := math.Inf(1), math.Inf(-1)
	y1 := 0.0
	for _, s := range c.Series {
		for i := range s.X {
			x0, x1 = math.Min(x0, s.X[i]), math.Max(x1, s.X[i])
			y1 = math.Max(y1, s.Y[i])
		}
	}
	for _, m := range c.Markers {
		x0, x1 = math.Min(x0, m.X), math.Max(x1, m.X)
	}
	if math.IsInf(x0, 0) {
		x0, x1 = 0, 1
	}
	if x1 <= x0 {
		x1 = x0 + 1
	}
	if y1 <= 0 {
		y1 = 1
	}
	ystep := niceStep(y1, 5)
	y1 = math.Ceil(y1/ystep) * ystep
	xstep := niceStep(x1-x0, 10)
	pw, ph := float64(W)-padLeft-padRight, float64(H)-top-padBottom
	px := func(x float64) float64 { return padLeft + (x-x0)/(x1-x0)*pw }
	py := func(y float64) float64 { return top + ph - y/y1*ph }

	var w svgWriter
	w.header(W, H, c.Title, c.Notes)
	for i, s := range c.Spans {
		col := s.Color
		if col == "" {
			col = "#f4c7c3"
		}
		w.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.6"/>`+"\n",
			px(s.X0), top, math.Max(px(s.X1)-px(s.X0), 1), ph, col)
		if s.Label != "" {
			w.f(`<text x="%.1f" y="%.1f" font-size="11" fill="#a33">%s</text>`+"\n", px(s.X0)+3, top+ph-6-14*float64(i), esc(s.Label))
		}
	}
	// Grid and axes.
	for y := 0.0; y <= y1+ystep/2; y += ystep {
		w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", padLeft, py(y), padLeft+pw, py(y))
		w.f(`<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", padLeft-6, py(y)+4, fmtTick(y))
	}
	for x := math.Ceil(x0/xstep) * xstep; x <= x1+xstep/1e6; x += xstep {
		w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", px(x), top, px(x), top+ph)
		w.f(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(x), top+ph+16, fmtTick(x))
	}
	w.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", padLeft, top, pw, ph)
	w.f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", padLeft+pw/2, H-12, esc(c.XLabel))
	w.f(`<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, esc(c.YLabel))
	// Series.
	for i, s := range c.Series {
		col := s.Color
		if col == "" {
			col = palette[i%len(palette)]
		}
		var pts bytes.Buffer
		for j := range s.X {
			if s.Step && j > 0 {
				fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.X[j]), py(s.Y[j-1]))
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.X[j]), py(s.Y[j]))
		}
		w.f(`<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`+"\n", col, bytes.TrimSpace(pts.Bytes()))
		w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n",
			padLeft+pw-170, top+12+16*float64(i), padLeft+pw-150, top+12+16*float64(i), col)
		w.f(`<text x="%.1f" y="%.1f">%s</text>`+"\n", padLeft+pw-145, top+16+16*float64(i), esc(s.Name))
	}
	for i, m := range c.Markers {
		col := m.Color
		if col == "" {
			col = "#555"
		}
		w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 3"/>`+"\n", px(m.X), top, px(m.X), top+ph, col)
		w.f(`<text x="%.1f" y="%.1f" fill="%s" font-size="11">%s</text>`+"\n", px(m.X)+3, top+12+13*float64(i%6), col, esc(m.Label))
	}
	w.f("</svg>\n")
	return w.Bytes()
}

// Bar is one category of a RangeChart: a median with its min-max range.
type Bar struct {
	Label         string
	Median        float64
	Min, Max      float64
	Color         string
	Note          string // printed above the bar, e.g. "no recovery"
	ValueLabel    string // replaces the printed median, e.g. ">8"
	Missing       bool   // nothing measured (drawn as a note only)
	AboveAxisNote bool   // the value is off the chart (e.g. never recovered)
}

// RangeChart shows one bar per category with a min-max whisker, on a
// logarithmic axis (failover gaps span milliseconds to tens of seconds).
type RangeChart struct {
	Title, YLabel string
	Width, Height int
	Bars          []Bar
	Notes         []string
	// Lines are labelled horizontal reference lines (targets).
	Lines []Marker // X is used as the Y value
}

// SVG renders the chart.
func (c RangeChart) SVG() []byte {
	W, H := c.Width, c.Height
	if W == 0 {
		W = 900
	}
	if H == 0 {
		H = 480
	}
	top := padTop + 14*float64(max(len(c.Notes)-1, 0))
	bottom := 110.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, b := range c.Bars {
		if b.Missing {
			continue
		}
		for _, v := range []float64{b.Min, b.Median, b.Max} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	for _, l := range c.Lines {
		if l.X > 0 {
			lo, hi = math.Min(lo, l.X), math.Max(hi, l.X)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0.01, 1
	}
	d0 := math.Floor(math.Log10(lo))
	d1 := math.Ceil(math.Log10(hi))
	if d1 <= d0 {
		d1 = d0 + 1
	}
	pw, ph := float64(W)-padLeft-padRight, float64(H)-top-bottom
	py := func(v float64) float64 {
		if v <= 0 {
			return top + ph
		}
		return top + ph - (math.Log10(v)-d0)/(d1-d0)*ph
	}
	var w svgWriter
	w.header(W, H, c.Title, c.Notes)
	for d := d0; d <= d1; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if d == d1 && m > 1 {
				break
			}
			stroke := "#eee"
			if m == 1 {
				stroke = "#ccc"
			}
			w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", padLeft, py(v), padLeft+pw, py(v), stroke)
			w.f(`<text x="%.1f" y="%.1f" text-anchor="end" font-size="11">%s</text>`+"\n", padLeft-6, py(v)+4, fmtTick(v))
		}
	}
	w.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", padLeft, top, pw, ph)
	w.f(`<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, esc(c.YLabel))
	n := float64(max(len(c.Bars), 1))
	slot := pw / n
	for i, b := range c.Bars {
		col := b.Color
		if col == "" {
			col = palette[i%len(palette)]
		}
		cx := padLeft + slot*(float64(i)+0.5)
		bw := math.Min(slot*0.55, 60)
		if !b.Missing && b.Median > 0 {
			w.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.75"/>`+"\n", cx-bw/2, py(b.Median), bw, top+ph-py(b.Median), col)
			if b.Max > b.Min {
				w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222"/>`+"\n", cx, py(b.Min), cx, py(b.Max))
				w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222"/>`+"\n", cx-6, py(b.Min), cx+6, py(b.Min))
				w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222"/>`+"\n", cx-6, py(b.Max), cx+6, py(b.Max))
			}
			val := b.ValueLabel
			if val == "" {
				val = fmtTick3(b.Median)
			}
			w.f(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11">%s</text>`+"\n", cx, py(math.Max(b.Max, b.Median))-5, esc(val))
		}
		if b.Note != "" {
			y := top + 14
			if !b.Missing && b.Median > 0 {
				y = py(math.Max(b.Max, b.Median)) - 18
			}
			w.f(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#a33">%s</text>`+"\n", cx, y, esc(b.Note))
		}
		w.f(`<text transform="translate(%.1f %.1f) rotate(-30)" text-anchor="end" font-size="11">%s</text>`+"\n", cx+4, top+ph+14, esc(b.Label))
	}
	for _, l := range c.Lines {
		col := l.Color
		if col == "" {
			col = "#a33"
		}
		w.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 4"/>`+"\n", padLeft, py(l.X), padLeft+pw, py(l.X), col)
		w.f(`<text x="%.1f" y="%.1f" text-anchor="end" font-size="11" fill="%s">%s</text>`+"\n", padLeft+pw-4, py(l.X)-4, col, esc(l.Label))
	}
	w.f("</svg>\n")
	return w.Bytes()
}

func fmtTick3(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }
