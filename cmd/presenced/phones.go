package main

import (
	"fmt"
	"os"

	"github.com/presenced/presenced/core/calls"
)

// apiPhones is the phones for the API; PRESENCED_PHONES is read here.
func (m *Main) apiPhones() (*calls.Phones, error) {
	var macs map[string]string
	if m.Config.Phones != "" {
		f, err := os.Open(m.Config.Phones)
		if err != nil {
			return nil, fmt.Errorf("reading PRESENCED_PHONES: %w", err)
		}
		defer f.Close()
		if macs, err = calls.ReadPhones(f); err != nil {
			return nil, fmt.Errorf("reading PRESENCED_PHONES %s: %w", m.Config.Phones, err)
		}
	}
	return calls.NewPhones(m.svc, m.hub, m.Config.Site, macs), nil
}
