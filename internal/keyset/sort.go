package keyset

import "slices"

// SortWords sorts words, each below 1<<top, in place by their bits from
// low up, a byte at a time from the highest (an American flag sort),
// leaving short runs to slices.Sort. Words equal in those bits end up in
// any order.
func SortWords(words []uint64, top, low uint) {
	if top <= low {
		return
	}
	if len(words) <= 64 {
		slices.Sort(words)
		return
	}
	shift := low
	if top > low+8 {
		shift = top - 8
	}
	var end, next [256]int
	for _, w := range words {
		end[w>>shift&0xff]++
	}
	sum := 0
	for d := range end {
		next[d] = sum
		sum += end[d]
		end[d] = sum
	}
	start := next
	for d := range next {
		for next[d] < end[d] {
			w := words[next[d]]
			for e := int(w >> shift & 0xff); e != d; e = int(w >> shift & 0xff) {
				words[next[e]], w = w, words[next[e]]
				next[e]++
			}
			words[next[d]] = w
			next[d]++
		}
	}
	for d := range start {
		SortWords(words[start[d]:end[d]], shift, low)
	}
}
