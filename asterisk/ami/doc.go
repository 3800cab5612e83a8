// Package ami is presenced's AMI adapter: it logs in to Asterisk's manager
// interface, reads the presence of every provider (PresenceStateList) and
// the hints of the running dialplan (ExtensionStateList), follows
// PresenceStateChange events, and does it all again after every reconnect
// and after Asterisk's FullyBooted.
//
// It uses github.com/staskobzar/goami2 v1.7.7 for AMI messages (building
// actions, parsing frames) but not its Client, whose defects would lose
// exactly what presenced needs (see README "AMI" and libdefects_test.go):
//   - the client drops any event the consumer does not take within 10 ms;
//   - login reads the banner and the response with one Read each, so a
//     banner and response that arrive split or together break it;
//   - frames are split at a line "\r\n", so a value ending in a bare "\n"
//     (a presence message with a line break) ends a frame early;
//   - Parse panics on a frame cut short ("Event: x\r") and rejects a value
//     holding a bare "\n", losing the whole event.
//
// Here one reader goroutine per connection splits frames on "\r\n\r\n",
// hands only whole frames to Parse (bare line feeds protected, panics
// recovered), and queues events without bound or loss.
package ami
