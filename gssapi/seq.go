package gssapi

import "fmt"

// replayWindow is the number of sequence numbers behind the highest seen
// that a datagram may still carry (MIT uses 64 as well).
const replayWindow = 64

// recvSeq checks incoming sequence numbers (RFC 4121 §4.2.6, RFC 2743
// §1.2.3). In stream mode every token must carry exactly the next number; in
// datagram mode tokens may arrive late or out of order within the window but
// never twice.
type recvSeq struct {
	next     uint64 // stream: the number expected next; datagram: highest seen + 1
	window   uint64 // datagram: bit i set = (next-1-i) was seen
	datagram bool
	started  bool // datagram: whether any token was seen since switching
}

func (s *recvSeq) check(seq uint64) error {
	if !s.datagram {
		switch {
		case seq == s.next:
			s.next++
			return nil
		case seq < s.next:
			return fmt.Errorf("%w: got %d, expected %d", ErrUnseqToken, seq, s.next)
		default:
			return fmt.Errorf("%w: got %d, expected %d", ErrGapToken, seq, s.next)
		}
	}
	if !s.started || seq >= s.next {
		shift := seq + 1 - s.next
		if !s.started {
			shift = 0
			s.started = true
			s.window = 0
		}
		if shift >= replayWindow {
			s.window = 0
		} else {
			s.window <<= shift
		}
		s.window |= 1
		s.next = seq + 1
		return nil
	}
	age := s.next - 1 - seq
	if age >= replayWindow {
		return fmt.Errorf("%w: %d is %d behind the newest", ErrOldToken, seq, age)
	}
	if s.window&(1<<age) != 0 {
		return fmt.Errorf("%w: sequence number %d", ErrDuplicateToken, seq)
	}
	s.window |= 1 << age
	return nil
}

// toDatagram switches to replay-window checking; numbers already consumed by
// the stream stay refused.
func (s *recvSeq) toDatagram() {
	if s.datagram {
		return
	}
	s.datagram = true
	// Everything before next is consumed: start the window there, marked seen.
	s.started = s.next > 0
	s.window = ^uint64(0)
}
