// Parses Prometheus text exposition from stdin with Prometheus' own parser
// (github.com/prometheus/common/expfmt) and prints the metric families as JSON: the reference
// parser for the tests' /metrics checks (test/prom/parse.ts).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Le as text: JSON has no +Inf.
type bucket struct {
	Le    string `json:"le"`
	Count uint64 `json:"count"`
}

type sample struct {
	Labels  map[string]string `json:"labels"`
	Value   *float64          `json:"value,omitempty"`
	Count   *uint64           `json:"count,omitempty"`
	Sum     *float64          `json:"sum,omitempty"`
	Buckets []bucket          `json:"buckets,omitempty"`
}

type family struct {
	Name    string   `json:"name"`
	Help    string   `json:"help"`
	Type    string   `json:"type"`
	Samples []sample `json:"samples"`
}

func main() {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []family{}
	for _, n := range names {
		mf := families[n]
		f := family{Name: n, Help: mf.GetHelp(), Type: mf.GetType().String()}
		for _, m := range mf.GetMetric() {
			s := sample{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				v := m.GetCounter().GetValue()
				s.Value = &v
			case m.Gauge != nil:
				v := m.GetGauge().GetValue()
				s.Value = &v
			case m.Untyped != nil:
				v := m.GetUntyped().GetValue()
				s.Value = &v
			case m.Histogram != nil:
				h := m.GetHistogram()
				c, sum := h.GetSampleCount(), h.GetSampleSum()
				s.Count, s.Sum = &c, &sum
				for _, b := range h.GetBucket() {
					s.Buckets = append(s.Buckets, bucket{Le: strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64), Count: b.GetCumulativeCount()})
				}
			case m.Summary != nil:
				c, sum := m.GetSummary().GetSampleCount(), m.GetSummary().GetSampleSum()
				s.Count, s.Sum = &c, &sum
			}
			f.Samples = append(f.Samples, s)
		}
		out = append(out, f)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
