// Package libdefects holds the tests that show why presenced does not use
// github.com/CyCoreSystems/agi and github.com/CyCoreSystems/ari/v5: each
// feeds the library what a real Asterisk sends and shows it going wrong. It
// is a module of its own, so that presenced's go.mod does not carry
// libraries it does not use; make test runs it.
package libdefects
