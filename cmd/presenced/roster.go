package main

import (
	"fmt"
	"os"

	"github.com/presenced/presenced/core/dialplan/conf"
)

// loadRoster reads PRESENCED_ROSTER, the users CSV of `presenced dialplan
// hints --csv` (extension, devices, name), into the names the board shows.
// A file that cannot be read is an error and changes nothing. It runs at
// start and on SIGHUP.
func (m *Main) loadRoster() error {
	if m.Config.Roster == "" {
		return nil
	}
	f, err := os.Open(m.Config.Roster)
	if err != nil {
		return fmt.Errorf("reading PRESENCED_ROSTER: %w", err)
	}
	defer f.Close()
	users, err := conf.ReadUsersCSV(f, "PJSIP")
	if err != nil {
		return fmt.Errorf("reading PRESENCED_ROSTER %s: %w", m.Config.Roster, err)
	}
	names := make(map[string]string, len(users))
	for _, u := range users {
		if u.Name != "" {
			names[u.Exten] = u.Name
		}
	}
	m.roster.Store(&names)
	m.Log.Info().Str("component", "board").Str("file", m.Config.Roster).Int("names", len(names)).Msg("roster read")
	return nil
}

// names returns the roster's names by extension.
func (m *Main) names() map[string]string {
	if p := m.roster.Load(); p != nil {
		return *p
	}
	return map[string]string{}
}
