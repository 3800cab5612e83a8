package calls

import (
	"sync"
	"time"
)

// Book is the calls of one Asterisk, safe for concurrent use: the AMI
// feed writes it (it is an ami.CallSink), the API reads it.
type Book struct {
	mu sync.Mutex
	t  *Tracker
	// onChange is called with what each event or list changed and ended,
	// under the book's lock, so in Asterisk's order.
	onChange func(changed, ended []Call)
}

// NewBook returns an empty book; onChange (nil: none) hears every change.
func NewBook(onChange func(changed, ended []Call)) *Book {
	return &Book{t: New(), onChange: onChange}
}

// CallEvent applies one channel event.
func (b *Book) CallEvent(ev Fields, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed, ended := b.t.Event(ev, at)
	if b.onChange != nil && len(changed)+len(ended) > 0 {
		b.onChange(changed, ended)
	}
}

// ResyncCalls replaces what is known with a CoreShowChannels list.
func (b *Book) ResyncCalls(items []Fields, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed, ended := b.t.Resync(items, at)
	if b.onChange != nil && len(changed)+len(ended) > 0 {
		b.onChange(changed, ended)
	}
}

// All returns every call, by channel.
func (b *Book) All() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.t.Calls()
}
