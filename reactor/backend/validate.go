package backend

import "fmt"

// StateInFlight is the bit of Op.Sys.State that marks an op accepted by Submit
// whose final completion has not been delivered yet. Validate rejects an op
// carrying it; a backend sets it when Submit accepts the op and clears it when
// it posts (or, at Close, discards) the op's final completion. The other bits
// of Sys.State are the backend's own.
const StateInFlight uint32 = 1 << 31

// ReservedSlot is the first slot of the tokens backends keep for their own
// requests (with generation 0); see Reserved.
const ReservedSlot = 0xfffffff0

// Reserved reports whether t is a token a backend keeps for its own requests
// (generation 0, slot ReservedSlot or above). A loop never makes one: its
// generations start at 1. Validate rejects ops and cancel targets with one.
func Reserved(t Token) bool { return t.Gen() == 0 && t.Slot() >= ReservedSlot }

// Validate is the one judgement of an op's shape that every backend's Submit
// applies before accepting it, so that a malformed op gets the same error on
// every backend. It returns nil, or an error wrapping ErrInvalidOp (which also
// matches ErrUnsupported) that names the fault. It reads op only; it does not
// check descriptors (a bad Fd is the kernel's answer, in the completion).
//
// Per kind: Multishot is allowed on accept, poll, recv and recvmsg (recv and
// recvmsg only with BufferSelect); BufferSelect on recv and recvmsg; connect needs Addr; a
// sendmsg with AddrLen > 0 needs Addr; Control only on sendmsg and recvmsg;
// a cancel may not target a reserved token. The content of Control is the
// kernel's to judge (a malformed control message fails the op with -EINVAL
// in its completion). Goroutine-safe.
func Validate(op *Op) error {
	if op == nil {
		return fmt.Errorf("%w: nil op", ErrInvalidOp)
	}
	if op.Kind >= kindCount {
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidOp, op.Kind)
	}
	if op.Sys.State&StateInFlight != 0 {
		return fmt.Errorf("%w: %v op submitted again before its final completion", ErrInvalidOp, op.Kind)
	}
	if Reserved(op.Token) {
		return fmt.Errorf("%w: %v op with reserved token %#x", ErrInvalidOp, op.Kind, uint64(op.Token))
	}
	if op.Multishot {
		switch op.Kind {
		case KindAccept, KindPoll:
		case KindRecv, KindRecvMsg:
			if !op.BufferSelect {
				return fmt.Errorf("%w: multishot %v without BufferSelect", ErrInvalidOp, op.Kind)
			}
		default:
			return fmt.Errorf("%w: multishot %v", ErrInvalidOp, op.Kind)
		}
	}
	if op.BufferSelect && op.Kind != KindRecv && op.Kind != KindRecvMsg {
		return fmt.Errorf("%w: BufferSelect on %v", ErrInvalidOp, op.Kind)
	}
	if op.Control != nil && op.Kind != KindSendMsg && op.Kind != KindRecvMsg {
		return fmt.Errorf("%w: Control on %v", ErrInvalidOp, op.Kind)
	}
	switch op.Kind {
	case KindConnect:
		if op.Addr == nil {
			return fmt.Errorf("%w: connect without Addr", ErrInvalidOp)
		}
	case KindSendMsg:
		if op.AddrLen > 0 && op.Addr == nil {
			return fmt.Errorf("%w: sendmsg with AddrLen %d and no Addr", ErrInvalidOp, op.AddrLen)
		}
	case KindCancel:
		if Reserved(op.Target) {
			return fmt.Errorf("%w: cancel of reserved token %#x", ErrInvalidOp, uint64(op.Target))
		}
	}
	return nil
}

// ValidateRoom is Validate's complement for what depends on the backend's
// configuration: a multishot KindRecvMsg must leave payload room in each
// provided buffer of bufferSize bytes (MultishotRecvMsgRoom). Every backend's
// Submit applies it after Validate. Goroutine-safe.
func ValidateRoom(op *Op, bufferSize int) error {
	if op.Kind == KindRecvMsg && op.Multishot {
		if room, nl, cl := MultishotRecvMsgRoom(op, bufferSize); room <= 0 {
			return fmt.Errorf("%w: multishot recvmsg: name room %d and control room %d leave no payload room in %d-byte buffers",
				ErrInvalidOp, nl, cl, bufferSize)
		}
	}
	return nil
}
