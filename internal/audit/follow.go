package audit

import (
	"encoding/json"
	"fmt"
)

// Following a chain through a damaged log. Each record names its place
// twice: its sequence number and its previousHash, the hash of the record
// before it. A record follows another when its sequence number is the
// next and its previousHash is that record's hash. A record that does not
// follow the one before it is held for one record more: the record after
// it says which of the two the chain goes on from. So that one change is
// reported once, where it is:
//
//   - a record removed: the next one does not follow, and the one after
//     it follows that one: the records between are missing;
//   - a record inserted, duplicated or moved back: it does not follow, and
//     the one after it follows the record before it: it is out of place,
//     and the chain goes on past it. An inserted record that follows the
//     record before it (a forgery with the right sequence number and
//     previousHash) is found by the genuine record of that number after
//     it, which the chain goes on from. Several such forgeries, each
//     following the one before, make the chain go back to the number of
//     the first when the genuine records come; once the records after
//     them follow the genuine ones, the break is moved to where the
//     forgeries begin, naming both places (wentOn);
//   - two records swapped: the first is out of place, and the second
//     follows the record before; the record after them follows the
//     first, which the chain then goes on through;
//   - a record edited: its hash does not match it; edited with its hash
//     made again, the next record does not follow it (its previousHash
//     names the record as it was).
//
// Anything else takes the chain up again from the record that broke it,
// by its own hash and sequence number, so that a break does not hide the
// ones after it.

// recordHead is where a line's record places itself in its chain.
type recordHead struct {
	hash   string // the hash the line claims
	seq    uint64
	prev   string // its previousHash
	selfOK bool   // hash is SHA-256(prev ‖ the event), as the chain has it
	line   uint64 // its line in the log, from 1
}

// follows reports whether r follows h in a chain.
func (r *recordHead) follows(h *recordHead) bool {
	return r.seq == h.seq+1 && r.prev == h.hash
}

// readHead returns where the record on line b places itself, or, if b is
// not a record (it has no hash or no sequence number), why not. It reads
// the line as checkLine does: a line framed as appendLine frames it
// without decoding it, any other as JSON.
func readHead(b []byte) (recordHead, string) {
	hash, event, ok := splitLine(b)
	var ev chainFields
	if ok {
		if ev, ok = eventFields(event); !ok {
			ok = json.Unmarshal(event, &ev) == nil
		}
	}
	if !ok {
		var ln line
		if err := json.Unmarshal(b, &ln); err != nil {
			return recordHead{}, fmt.Sprintf("not a record line: %v", err)
		}
		if err := json.Unmarshal(ln.Event, &ev); err != nil {
			return recordHead{}, fmt.Sprintf("event is not JSON: %v", err)
		}
		hash, event = []byte(ln.Hash), ln.Event
	}
	if len(hash) == 0 || ev.Sequence == 0 {
		return recordHead{}, "not a record: the line has no hash or no sequence number"
	}
	h := recordHead{hash: string(hash), seq: ev.Sequence, prev: ev.PrevHash}
	h.selfOK = chainHash(ev.PrevHash, event) == h.hash
	return h, ""
}

// chainFollower follows a chain through the records of a log, in order,
// and keeps the breaks it finds.
type chainFollower struct {
	cur      recordHead  // the chain's last record so far (genesis: seq 0)
	pending  *recordHead // a record that does not follow cur, judged by the next
	stray    *recordHead // the last record found out of place
	resume   *recordHead // the record before the chain last went back
	back     *wentBack   // that going back, while it may be the other way
	garbage  uint64      // lines that are not records since the last record
	gapLines uint64      // such lines before pending
	problems []*Problem
	dropped  uint64 // breaks past maxProblems, not kept
	broken   bool   // the chain has a break: verified counts no more
	verified uint64 // records before the first problem
	// tail counts the records chained intact since the last break, from
	// the record numbered tailFirst.
	tail, tailFirst uint64
	// runLine and runSeq are the line and the number of the first of the
	// records that follow each other on consecutive lines up to cur.
	runLine, runSeq uint64
}

// wentBack is where the chain went back to a number it had passed: the
// records it had followed from that number (lines oldLine on) and the
// ones it follows now (from line newLine) carry the same numbers. If the
// records after the new ones follow them past the last of the old ones,
// the two are branches from one place (wentOn).
type wentBack struct {
	problem *Problem // reported at newLine, as records moved or copied there
	seq     uint64   // the number the chain went back to
	oldLine uint64
	newLine uint64
}

func newChainFollower() chainFollower {
	return chainFollower{cur: recordHead{hash: genesis}}
}

// add adds p to the problems, which stay in the order of their lines: a
// pending record is judged after the lines after it. Past maxProblems,
// the last in that order is counted in dropped instead.
func (f *chainFollower) add(p *Problem) {
	i := len(f.problems)
	for i > 0 && f.problems[i-1].Line > p.Line {
		i--
	}
	if len(f.problems) == maxProblems {
		f.dropped++
		if i == len(f.problems) {
			return
		}
		f.problems = f.problems[:len(f.problems)-1]
	}
	f.problems = append(f.problems, nil)
	copy(f.problems[i+1:], f.problems[i:])
	f.problems[i] = p
}

// maxProblems bounds the breaks of a log that a check keeps: a log
// edited to break on every line would otherwise hold a problem, some 150
// bytes, for each line of a few bytes. The first ten are printed.
const maxProblems = 1000

// broke adds a break of the chain at line, where record seq was expected,
// and returns it.
func (f *chainFollower) broke(line, seq uint64, reason string) *Problem {
	p := &Problem{Line: int(line), Seq: seq, Reason: reason}
	f.add(p)
	f.broken, f.tail, f.back = true, 0, nil
	return p
}

// notRecord notes line, which is not a record, for reason.
func (f *chainFollower) notRecord(line uint64, reason string) {
	f.broke(line, 0, reason)
	f.garbage++
}

// record follows the chain to the record r, the next of the log.
func (f *chainFollower) record(r recordHead) {
	p := f.pending
	if p == nil {
		switch {
		case r.follows(&f.cur):
			f.wentOn()
			f.accept(r)
		case f.stray != nil && f.stray.follows(&f.cur) && r.follows(f.stray):
			// The stray was the next record, moved before the one before
			// it (reported where it stood): the chain goes on through it.
			f.take(*f.stray)
			f.stray = nil
			f.accept(r)
		case f.resume != nil && r.follows(f.resume):
			// The end of records the chain went back to (reported where
			// they began): the chain goes on where it was.
			f.cur, f.resume, f.tail = *f.resume, nil, 0
			f.accept(r)
		default:
			f.pending, f.gapLines, f.garbage = &r, f.garbage, 0
		}
		return
	}
	f.pending = nil
	switch {
	case r.follows(&f.cur):
		// Before r.follows(p): a copy of cur is followed by what follows
		// cur.
		f.outOfPlace(p)
		f.accept(r)
	case r.follows(p):
		if p.seq == f.cur.seq && p.prev == f.cur.prev && f.cur.line > 0 {
			// Two records numbered alike after the same record: the
			// chain goes on from the second, so the first was put there.
			f.forged(p)
		} else {
			back := f.wentBackTo(p)
			if p.seq <= f.cur.seq {
				resume := f.cur
				f.resume = &resume
			}
			if problem := f.judge(p); problem != nil && back != nil {
				back.problem = problem
				f.back = back
			}
		}
		f.take(*p)
		f.accept(r)
	case p.seq <= f.cur.seq:
		f.outOfPlace(p)
		f.record(r)
	default:
		f.judge(p)
		f.take(*p)
		f.record(r)
	}
}

// end judges the record left pending at the end of the log.
func (f *chainFollower) end() {
	if p := f.pending; p != nil {
		f.pending = nil
		if p.seq <= f.cur.seq {
			f.outOfPlace(p)
			return
		}
		f.judge(p)
		f.take(*p)
	}
}

// accept makes r, which follows cur, the chain's last record.
func (f *chainFollower) accept(r recordHead) {
	if !r.selfOK {
		f.broke(r.line, r.seq, "hash does not match the record (it was edited)")
	} else {
		f.count(r.seq)
	}
	if f.runLine == 0 || r.line != f.cur.line+1 {
		f.runLine, f.runSeq = r.line, r.seq
	}
	f.cur, f.garbage = r, 0
}

// take takes the chain up again at r, whose break is reported.
func (f *chainFollower) take(r recordHead) {
	if r.selfOK {
		f.count(r.seq)
	}
	f.runLine, f.runSeq = r.line, r.seq
	f.cur, f.garbage = r, 0
}

// wentBackTo returns where the chain goes back to, if it goes on from p,
// a record numbered as one it has passed: nil unless the records it
// passed from that number stand on consecutive lines up to cur, so that
// the line of the one numbered p.seq is known.
func (f *chainFollower) wentBackTo(p *recordHead) *wentBack {
	if p.seq > f.cur.seq || f.runLine == 0 || p.seq < f.runSeq {
		return nil
	}
	return &wentBack{seq: p.seq, oldLine: f.runLine + (p.seq - f.runSeq), newLine: p.line}
}

// wentOn is called when the next record follows cur. If the chain went
// back to a number it had passed (wentBack), has since passed the last
// record it went back from without another break, and goes on from
// records other than those, the records of those numbers stand twice, on
// two branches from the same place: either may be the one put there (a
// forgery before the genuine records, or after them and longer), so the
// break is reported where the first branch begins, naming both, and no
// record of either counts as verified.
func (f *chainFollower) wentOn() {
	b, old := f.back, f.resume
	if b == nil || old == nil || f.cur.seq < old.seq || f.cur.hash == old.hash {
		return
	}
	f.back, f.resume = nil, nil
	// Every break clears back, so its problem is the last: found without
	// a search, as a log of many such breaks must not take time growing
	// with their square.
	last := len(f.problems) - 1
	if last < 0 || f.problems[last] != b.problem {
		return
	}
	f.problems = f.problems[:last]
	b.problem.Line, b.problem.Seq = int(b.oldLine), b.seq
	b.problem.Reason = fmt.Sprintf("records numbered %d to %d stand twice, on lines %d to %d and again from line %d, each following the record before it: the chain goes on from the second (records were inserted in one of the two places)",
		b.seq, old.seq, b.oldLine, b.oldLine+(old.seq-b.seq), b.newLine)
	f.add(b.problem)
	if f.problems[0] == b.problem {
		// The records before the old ones chained intact from the first.
		f.verified = b.seq - 1
	}
}

// count counts the record seq, chained intact.
func (f *chainFollower) count(seq uint64) {
	if !f.broken {
		f.verified++
	}
	if f.tail == 0 {
		f.tailFirst = seq
	}
	f.tail++
}

// judge reports the break at p, a record that does not follow cur and
// that the chain goes on from, and returns it (nil if the break is that
// of lines reported as not records).
func (f *chainFollower) judge(p *recordHead) *Problem {
	want := f.cur.seq + 1
	reason := ""
	switch {
	case p.seq > want && p.seq-want == f.gapLines:
		// The lines in place of the missing records, reported as not
		// records, were those records.
		if !p.selfOK {
			f.broke(p.line, p.seq, "hash does not match the record (it was edited)")
		}
		return nil
	case p.seq > want && p.prev == f.cur.hash:
		reason = fmt.Sprintf("sequence %d where %d was expected, though its previousHash is the hash of the record before (its sequence number was changed)", p.seq, want)
	case p.seq == want+1:
		reason = fmt.Sprintf("sequence %d where %d was expected, and its previousHash is not the hash of the record before: record %d was removed", p.seq, want, want)
	case p.seq > want:
		reason = fmt.Sprintf("sequence %d where %d was expected, and its previousHash is not the hash of the record before: records %d to %d were removed", p.seq, want, want, p.seq-1)
	case p.seq == want:
		reason = "previousHash does not match the record before (that record was edited, or this one put in its place)"
	default:
		reason = fmt.Sprintf("sequence %d where %d was expected: the chain goes back (records were moved or copied here)", p.seq, want)
	}
	if !p.selfOK {
		reason += "; and its hash does not match the record (it was edited)"
	}
	return f.broke(p.line, want, reason)
}

// outOfPlace reports p, a record that does not follow cur while the
// record after it does (or the log ends): the chain goes on past it.
func (f *chainFollower) outOfPlace(p *recordHead) {
	want := f.cur.seq + 1
	reason := fmt.Sprintf("sequence %d where %d was expected: the record is out of place, and the chain goes on past it (a record was inserted, duplicated or moved)", p.seq, want)
	if p.seq == f.cur.seq && p.hash == f.cur.hash {
		reason = fmt.Sprintf("sequence %d where %d was expected: a copy of the record before it (a record was duplicated)", p.seq, want)
	}
	f.broke(p.line, want, reason)
	f.stray = p
}

// forged reports cur, a record the chain does not go on from: p, after
// it, holds the same sequence number and previousHash, and the record
// after p follows p.
func (f *chainFollower) forged(p *recordHead) {
	c := f.cur
	problem := f.broke(c.line, c.seq, fmt.Sprintf("a record numbered %d that the chain does not go on from: line %d holds sequence %d after the same record, and the record after it follows that one (a record was inserted)", c.seq, p.line, p.seq))
	if f.problems[0] == problem {
		// cur was counted before its break was known, and maybe a break
		// after it: the records before it chained intact from the first.
		f.verified = c.seq - 1
	}
}
