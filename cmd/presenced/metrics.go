package main

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/presenced/presenced/views/webhook"
)

// metrics are presenced's Prometheus metrics, served on /metrics (the
// hooks' own are hooksrv's).
type metrics struct {
	reg *prometheus.Registry
}

func newMetrics(m *Main) *metrics {
	reg := m.reg
	x := &metrics{reg: reg}
	connected := func(status func() (bool, error)) func() float64 {
		return func() float64 {
			if ok, _ := status(); ok {
				return 1
			}
			return 0
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_build_info", Help: "1, with the version of presenced running and the Go it was built with.",
			ConstLabels: prometheus.Labels{"version": buildVersion(), "goversion": runtime.Version()}}, func() float64 { return 1 }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_fastagi_refused_total", Help: "FastAGI connections closed unserved: not_allowed (a client outside PRESENCED_AGI_ALLOW), no_environment (no whole AGI environment in time).",
			ConstLabels: prometheus.Labels{"reason": "not_allowed"}}, func() float64 { n, _ := m.agi.Refused(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_fastagi_refused_total", Help: "FastAGI connections closed unserved: not_allowed (a client outside PRESENCED_AGI_ALLOW), no_environment (no whole AGI environment in time).",
			ConstLabels: prometheus.Labels{"reason": "no_environment"}}, func() float64 { _, n := m.agi.Refused(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_hints", Help: "Hints in the hint table."},
			func() float64 { return float64(m.hints.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_watch_subscribers", Help: "Subscribers of the watch hub."},
			func() float64 { return float64(m.hub.Subscribers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_watch_changes_total", Help: "Changes the watch hub numbered and delivered."},
			func() float64 { return float64(m.hub.Stats().Published) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_watch_coalesced_total", Help: "Queued changes replaced by later ones of the same hint or provider, over all subscribers."},
			func() float64 { return float64(m.hub.Stats().Coalesced) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_watch_dropped_total", Help: "Subscribers dropped for staying hopelessly behind."},
			func() float64 { return float64(m.hub.Stats().Dropped) }))
	if wh := m.hooksOut; wh != nil {
		delivered := func(result string, f func(webhook.Stats) uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_webhook_deliveries_total",
				Help:        "Webhook events finished: delivered (2xx) or rejected (a status not retried; the event is given up).",
				ConstLabels: prometheus.Labels{"result": result}}, func() float64 { return float64(f(wh.Stats())) })
		}
		reg.MustRegister(
			delivered("delivered", func(s webhook.Stats) uint64 { return s.Delivered }),
			delivered("rejected", func(s webhook.Stats) uint64 { return s.Rejected }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_webhook_failures_total", Help: "Webhook attempts that failed (5xx, 408, 425, 429, no answer) and are retried."},
				func() float64 { return float64(wh.Stats().FailedAttempts) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_webhook_retries_total", Help: "Webhook attempts after a failed one."},
				func() float64 { return float64(wh.Stats().Retries) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_webhooks", Help: "Webhooks."},
				func() float64 { return float64(wh.Len()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_webhook_backlog", Help: "Journal entries after the webhooks' cursors, summed over webhooks."},
				func() float64 { return float64(wh.Backlog()) }))
	}
	if c := m.cluster; c != nil {
		labels := prometheus.Labels{"node": m.Config.Node, "site": m.Config.Site}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_cluster_connected", Help: "1 while this node is connected to NATS.", ConstLabels: labels},
			func() float64 {
				if c.Conn.Connected() {
					return 1
				}
				return 0
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_cluster_log_lag", Help: "Changes in the cluster's change log this node has yet to read (-1: the log could not be read).", ConstLabels: labels},
				func() float64 {
					lag, err := c.Lag(m.self())
					if err != nil {
						return -1
					}
					return float64(lag)
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_cluster_webhooks_delivering", Help: "Webhooks this node delivers (it holds their lease).", ConstLabels: labels},
				func() float64 { return float64(len(m.hooksOut.Delivering())) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_cluster_nodes", Help: "presenced nodes of the cluster heard from in the last 15 s, this one included (-1: the list could not be read).", ConstLabels: labels},
				func() float64 {
					n, err := c.NodeCount()
					if err != nil {
						return -1
					}
					return float64(n)
				}))
	}
	if m.ari != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_ari_connected", Help: "1 while the ARI event websocket is up."},
			connected(m.ari.Status)),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_ari_resyncs_total", Help: "ARI connections made and resynchronised (the first, every reconnect, every periodic resync)."},
				func() float64 { return float64(m.ari.Resyncs()) }))
	}
	if m.ami != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_ami_connected", Help: "1 while AMI is logged in."},
			connected(m.ami.Status)),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presenced_ami_resyncs_total", Help: "AMI logins and resynchronisations (the first, every reconnect, every FullyBooted)."},
				func() float64 { return float64(m.ami.Resyncs()) }))
	}
	return x
}
