// Package hints computes hint states exactly as Asterisk does: device
// states and their aggregation (main/devicestate.c), extension states
// (main/extension_state.c), and the ranking of several presence providers
// in one hint (main/presencestate.c). Its Table holds every hint, is fed
// device states and presence, and reports a change only when a hint's
// state really changed, each change carrying the hint's whole state.
package hints
