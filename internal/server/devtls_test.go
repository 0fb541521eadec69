package server

import (
	"crypto/tls"
	"sync"
	"testing"
	"time"
)

// Nodes of a dev cluster share one data directory (docs/cluster.md), and
// may start together with --tls: however their starts interleave, the
// files left are one CA and one pair it signed, and each node serves a
// pair that CA verifies, so that AWS_CA_BUNDLE works with every node.
func TestDevTLSStartsTogether(t *testing.T) {
	for round := range 20 {
		dir := t.TempDir()
		now := time.Now()
		const nodes = 8
		type served struct {
			pair tls.Certificate
			err  error
		}
		got := make([]served, nodes)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, cert, key, err := ensureDevTLS(dir, now)
				if err != nil {
					got[i].err = err
					return
				}
				// What the node serves: the pair it reads back at once.
				got[i].pair, got[i].err = tls.LoadX509KeyPair(cert, key)
			}()
		}
		close(start)
		wg.Wait()
		ca, cert, key := dir+"/"+devCAFile, dir+"/"+devCertFile, dir+"/"+devCertKeyFile
		if !devTLSValid(ca, cert, key, now) {
			t.Fatalf("round %d: the files left are not one CA and a pair it signed", round)
		}
		onDisk, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range got {
			if s.err != nil {
				t.Fatalf("round %d: node %d: %v", round, i, s.err)
			}
			if string(s.pair.Certificate[0]) != string(onDisk.Certificate[0]) {
				t.Fatalf("round %d: node %d serves a certificate other than the one beside ca.pem", round, i)
			}
		}
	}
}
