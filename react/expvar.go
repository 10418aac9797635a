package react

import (
	"expvar"
	"log/slog"
	"strconv"
	"sync"

	"github.com/gyre-io/gyre/reactor"
)

// ExpvarName is the expvar name under which Run publishes the counters of
// its loops when Config.DebugAddr is set (or Config.Expvar): at
// /debug/vars the value is an object with one member per running Run,
// keyed by its Config.Name, each reactor.ExpvarFunc's
// {"total": reactor.Stats, "loops": [reactor.Stats, …]}:
//
//	"gyre": {"echo": {"total": {"Backend": "uring", "ConnsOpen": 3, …}, "loops": [{…}]}}
//
// The name is published once per process, on the first such Run; each Run
// adds its member when its loops are made and removes it when it returns
// (the counters are final then), so several Runs in one process (tests,
// a program serving two services) share it: a second running Run with the
// same Name gets the member "NAME#2", and so on. If other code took the
// name first (reactor.PublishExpvar("gyre", …), expvar.Publish), Run logs
// one warning and publishes nothing.
const ExpvarName = "gyre"

// runVars is the registry behind ExpvarName.
var runVars struct {
	sync.Mutex
	published bool // ExpvarName is ours
	m         map[string]expvar.Func
}

// publishLoops adds the loops of a run named name to ExpvarName's value;
// the returned function removes them. Goroutine-safe.
func publishLoops(name string, loops []*reactor.Loop, log *slog.Logger) (unpublish func()) {
	v := &runVars
	v.Lock()
	defer v.Unlock()
	if !v.published {
		if expvar.Get(ExpvarName) != nil {
			log.Warn("expvar name already taken: the loops' counters are not published", "expvar", ExpvarName)
			return func() {}
		}
		expvar.Publish(ExpvarName, expvar.Func(snapshotRuns))
		v.published = true
		v.m = map[string]expvar.Func{}
	}
	key := name
	for i := 2; v.m[key] != nil; i++ {
		key = name + "#" + strconv.Itoa(i)
	}
	v.m[key] = reactor.ExpvarFunc(loops...)
	return func() {
		v.Lock()
		delete(v.m, key)
		v.Unlock()
	}
}

// snapshotRuns is ExpvarName's value: every running Run's counters.
func snapshotRuns() any {
	v := &runVars
	v.Lock()
	defer v.Unlock()
	out := make(map[string]any, len(v.m))
	for k, f := range v.m {
		out[k] = f()
	}
	return out
}
