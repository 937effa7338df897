package pluginhost

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ptyhost/ptyhost/core"
)

// pluginsCollector exports the plugins' restarts and states when scraped,
// so the figures are always those of List.
type pluginsCollector struct{ p *Plugins }

var (
	pluginRestartsDesc = prometheus.NewDesc("ptyhost_plugin_restarts_total",
		"Launches of a plugin after its first, automatic (after a crash) or requested.",
		[]string{"plugin"}, nil)
	pluginStateDesc = prometheus.NewDesc("ptyhost_plugin_state",
		"1 for the state a plugin is in, 0 for the others.",
		[]string{"plugin", "state"}, nil)
)

// pluginStates are the states a supervised plugin can be in.
var pluginStates = [...]core.PluginState{core.PluginStarting, core.PluginRunning, core.PluginRestarting, core.PluginFailed, core.PluginRefused, core.PluginStopped}

func (c pluginsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pluginRestartsDesc
	ch <- pluginStateDesc
}

func (c pluginsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.p.List() {
		ch <- prometheus.MustNewConstMetric(pluginRestartsDesc, prometheus.CounterValue, float64(st.Restarts), st.Name)
		for _, state := range pluginStates {
			v := 0.0
			if st.State == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(pluginStateDesc, prometheus.GaugeValue, v, st.Name, string(state))
		}
	}
}
