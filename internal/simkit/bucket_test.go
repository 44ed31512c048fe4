package simkit

import (
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	type step struct {
		at    float64 // seconds after t0: Refill(at)
		take  float64 // then taken
		level float64 // the level after
		wait  time.Duration
	}
	tests := []struct {
		name  string
		size  float64
		rate  float64
		steps []step
	}{
		{"full at first; the first refill adds nothing", 10, 2, []step{
			{at: 5, take: 4, level: 6, wait: 0},
			{at: 6, take: 0, level: 8, wait: 0},
			{at: 60, take: 0, level: 10, wait: 0}, // never above Size
		}},
		{"empty: wait for the cost", 2, 0.5, []step{
			{at: 0, take: 2, level: 0, wait: 2 * time.Second},
			{at: 1, take: 0, level: 0.5, wait: time.Second},
		}},
		{"charged below zero", 4, 1, []step{
			{at: 0, take: 6, level: -2, wait: 3 * time.Second},
			{at: 2, take: 0, level: 0, wait: time.Second},
		}},
		{"a clock set back adds nothing", 4, 1, []step{
			{at: 10, take: 4, level: 0, wait: time.Second},
			{at: 5, take: 0, level: 0, wait: time.Second},
			{at: 11, take: 0, level: 1, wait: 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewTokenBucket(tc.size, tc.rate)
			for i, s := range tc.steps {
				b.Refill(sec(s.at))
				b.Level -= s.take
				if b.Level != s.level || b.Wait(1) != s.wait {
					t.Fatalf("step %d: level %v, Wait(1) %v; want %v, %v", i, b.Level, b.Wait(1), s.level, s.wait)
				}
			}
		})
	}
}
