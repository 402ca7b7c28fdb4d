package main

import (
	"strings"
	"testing"
	"time"
)

const module = "example.com/m"

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		events string
		min    time.Duration
		want   string
		status int
	}{
		{"a failure shows what the test logged; a pass only its name", `
{"Action":"run","Package":"example.com/m/a","Test":"TestA"}
{"Action":"output","Package":"example.com/m/a","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestA","Output":"    a_test.go:3: hello\n"}
{"Action":"run","Package":"example.com/m/a","Test":"TestA/sub"}
{"Action":"output","Package":"example.com/m/a","Test":"TestA/sub","Output":"=== RUN   TestA/sub\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestA/sub","Output":"    a_test.go:3: boom\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestA/sub","Output":"--- FAIL: TestA/sub (0.00s)\n"}
{"Action":"fail","Package":"example.com/m/a","Test":"TestA/sub","Elapsed":0}
{"Action":"output","Package":"example.com/m/a","Test":"TestA","Output":"--- FAIL: TestA (0.00s)\n"}
{"Action":"fail","Package":"example.com/m/a","Test":"TestA","Elapsed":0}
{"Action":"run","Package":"example.com/m/a","Test":"TestB"}
{"Action":"output","Package":"example.com/m/a","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestB","Output":"    a_test.go:4: no root\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"example.com/m/a","Test":"TestB","Elapsed":0}
{"Action":"run","Package":"example.com/m","Test":"TestC"}
{"Action":"output","Package":"example.com/m","Test":"TestC","Output":"    a_test.go:5: quiet\n"}
{"Action":"pass","Package":"example.com/m","Test":"TestC","Elapsed":1.5}
{"Action":"output","Package":"example.com/m","Output":"PASS\n"}
{"Action":"output","Package":"example.com/m","Output":"ok  \texample.com/m\t1.6s\n"}
{"Action":"pass","Package":"example.com/m","Elapsed":1.6}
{"Action":"output","Package":"example.com/m/a","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/m/a","Output":"FAIL\texample.com/m/a\t0.004s\n"}
{"Action":"fail","Package":"example.com/m/a","Elapsed":0.004}
`, 0, `--- FAIL: TestA/sub (0.00s)  a
    a_test.go:3: boom
--- FAIL: TestA (0.00s)  a
    a_test.go:3: hello
--- SKIP: TestB (0.00s)  a
    a_test.go:4: no root
--- PASS: TestC (1.50s)
ok  	example.com/m	1.6s
FAIL
FAIL	example.com/m/a	0.004s
FAIL
`, 1},
		{"passes faster than -min say nothing", `
{"Action":"run","Package":"example.com/m","Test":"TestFast"}
{"Action":"pass","Package":"example.com/m","Test":"TestFast","Elapsed":0.2}
{"Action":"run","Package":"example.com/m","Test":"TestSlow"}
{"Action":"pass","Package":"example.com/m","Test":"TestSlow","Elapsed":2}
{"Action":"output","Package":"example.com/m","Output":"PASS\n"}
{"Action":"output","Package":"example.com/m","Output":"ok  \texample.com/m\t2.1s\n"}
{"Action":"pass","Package":"example.com/m","Elapsed":2.1}
{"Action":"output","Package":"example.com/m/b","Output":"?   \texample.com/m/b\t[no test files]\n"}
{"Action":"output","Package":"example.com/m/c","Output":"testing: warning: no tests to run\n"}
{"Action":"output","Package":"example.com/m/c","Output":"PASS\n"}
{"Action":"output","Package":"example.com/m/c","Output":"ok  \texample.com/m/c\t0.005s [no tests to run]\n"}
{"Action":"skip","Package":"example.com/m/b","Elapsed":0}
`, time.Second, `--- PASS: TestSlow (2.00s)
ok  	example.com/m	2.1s
?   	example.com/m/b	[no test files]
ok  	example.com/m/c	0.005s [no tests to run]
`, 0},
		{"a test that never finished shows what it said before the FAIL line", `
{"Action":"run","Package":"example.com/m","Test":"TestHang"}
{"Action":"output","Package":"example.com/m","Test":"TestHang","Output":"    b_test.go:4: before hang\n"}
{"Action":"output","Package":"example.com/m","Test":"TestHang","Output":"panic: test timed out after 3s\n"}
{"Action":"output","Package":"example.com/m","Output":"FAIL\texample.com/m\t3.015s\n"}
{"Action":"fail","Package":"example.com/m","Elapsed":3.015}
`, 0, `    b_test.go:4: before hang
panic: test timed out after 3s
FAIL	example.com/m	3.015s
FAIL
`, 1},
		{"build errors, and go test's own words", `
{"ImportPath":"example.com/m/b [example.com/m/b.test]","Action":"build-output","Output":"# example.com/m/b [example.com/m/b.test]\n"}
{"ImportPath":"example.com/m/b [example.com/m/b.test]","Action":"build-output","Output":"b/x.go:1:20: syntax error: unexpected {, expected )\n"}
{"ImportPath":"example.com/m/b [example.com/m/b.test]","Action":"build-fail"}
{"Action":"output","Package":"example.com/m/b","Output":"FAIL\texample.com/m/b [build failed]\n"}
{"Action":"fail","Package":"example.com/m/b","Elapsed":0}
go: warning: something outside the events
`, 0, `# example.com/m/b [example.com/m/b.test]
b/x.go:1:20: syntax error: unexpected {, expected )
FAIL	example.com/m/b [build failed]
go: warning: something outside the events
FAIL
`, 1},
	}
	for _, tt := range tests {
		var out strings.Builder
		status := run(strings.NewReader(strings.TrimPrefix(tt.events, "\n")), &out, tt.min, module)
		if out.String() != tt.want || status != tt.status {
			t.Errorf("%s: status %d, want %d; output:\n%s\nwant:\n%s", tt.name, status, tt.status, out.String(), tt.want)
		}
	}
}
