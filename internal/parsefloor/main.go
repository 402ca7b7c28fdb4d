// Command parsefloor is make bench's floor for parsing: it reads a
// JSON-lines response, parses each line with valyala/fastjson and reads
// the three fields lockstep reads, and does nothing else (no output, no
// de-duplication). lockstep tail --once is measured against it.
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"

	"github.com/valyala/fastjson"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: parsefloor URL")
		os.Exit(2)
	}
	resp, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "parsefloor:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var p fastjson.Parser
	n := 0
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		v, err := p.ParseBytes(sc.Bytes())
		if err != nil {
			fmt.Fprintf(os.Stderr, "parsefloor: line %d: %v\n", n+1, err)
			os.Exit(1)
		}
		if v.Get("id") == nil || v.Get("updated_at") == nil {
			fmt.Fprintf(os.Stderr, "parsefloor: line %d: no id or updated_at\n", n+1)
			os.Exit(1)
		}
		v.Get("deleted_at")
		n++
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "parsefloor:", err)
		os.Exit(1)
	}
}
