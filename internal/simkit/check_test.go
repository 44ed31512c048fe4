package simkit

import (
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	c := NewClock(t0)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Add(time.Second)
			_ = c.Now()
		}()
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("Now = %v", got)
	}
}

func TestReadsCountWentBack(t *testing.T) {
	i := 0
	got := Reads(5, func() bool { i++; return i%2 == 0 })
	if len(got) != 5 || got[0] || !got[1] {
		t.Fatalf("Reads = %v", got)
	}
	tests := []struct {
		bs                []bool
		trues, falses     int
		backTrue, backFal bool
	}{
		{nil, 0, 0, false, false},
		{[]bool{false, false, true, true}, 2, 2, false, true},
		{[]bool{true, false}, 1, 1, true, false},
		{[]bool{false, true, false, true}, 2, 2, true, true},
		{[]bool{true, true, true}, 3, 0, false, false},
	}
	for _, tc := range tests {
		if Count(tc.bs, true) != tc.trues || Count(tc.bs, false) != tc.falses {
			t.Errorf("Count(%v) = %d, %d", tc.bs, Count(tc.bs, true), Count(tc.bs, false))
		}
		if WentBack(tc.bs, true) != tc.backTrue || WentBack(tc.bs, false) != tc.backFal {
			t.Errorf("WentBack(%v) = %v, %v", tc.bs, WentBack(tc.bs, true), WentBack(tc.bs, false))
		}
	}
}
