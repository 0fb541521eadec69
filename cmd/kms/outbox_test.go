package main_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A server killed under a load of changes: every change that was made
// has its record in the trail after the next start, though its call was
// never answered (its record written at the start, marked recovered).
func TestChangesOfCallsCutShortByAKillAreRecorded(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	// A kill lands between a change and its record in about one round
	// of three: rounds go on until one has.
	const rounds, workers, each, killAfter = 15, 8, 50, 60 // 50 aliases a key at most
	var s *server
	answered, recovered := 0, 0
	var logs []string
	for round := 0; round < rounds && recovered == 0; round++ {
		s = startDev(t, dir)
		if round > 0 {
			recovered += countRecovered(t, dir)
		}
		c := s.client(t)
		keyIDs := make([]string, workers)
		for w := range keyIDs {
			out, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
			noErr(t, err, "CreateKey")
			keyIDs[w] = *out.KeyMetadata.KeyId
		}
		var (
			acked atomic.Int64
			wg    sync.WaitGroup
			once  sync.Once
		)
		reached := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/r%d-w%d-%d", round, w, i)), TargetKeyId: &keyIDs[w]})
					if err != nil {
						return // the server is gone
					}
					if acked.Add(1) >= killAfter {
						once.Do(func() { close(reached) })
					}
				}
			}()
		}
		select {
		case <-reached:
		case <-time.After(20 * time.Second):
			t.Fatal("the load did not reach the kill point")
		}
		s.kill()
		wg.Wait()
		answered += int(acked.Load())
		logs = append(logs, s.stderr.String())
	}
	s = startDev(t, dir)
	var made []string
	p := kms.NewListAliasesPaginator(s.client(t), &kms.ListAliasesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		noErr(t, err, "ListAliases")
		for _, a := range page.Aliases {
			if strings.HasPrefix(*a.AliasName, "alias/r") {
				made = append(made, *a.AliasName)
			}
		}
	}
	stopServer(t, s)
	recorded := map[string]bool{}
	recovered = 0
	for _, ev := range auditJSON(t, dir, "--event", "CreateAlias") {
		var params struct {
			AliasName string `json:"aliasName"`
		}
		if err := json.Unmarshal(ev.RequestParameters, &params); err != nil {
			t.Fatalf("CreateAlias record's requestParameters: %v", err)
		}
		if ev.AdditionalEventData != nil {
			if string(ev.AdditionalEventData) != `{"recovered":true}` || ev.ErrorCode != "" {
				t.Errorf("recovered record of %s: additionalEventData %s, errorCode %q", params.AliasName, ev.AdditionalEventData, ev.ErrorCode)
			}
			if recorded[params.AliasName] {
				t.Errorf("%s: a record recovered for a call recorded already", params.AliasName)
			}
			recovered++
		}
		if ev.ErrorCode == "" {
			recorded[params.AliasName] = true
		}
	}
	for _, name := range made {
		if !recorded[name] {
			t.Errorf("alias %s was made and no record of its CreateAlias is in the trail", name)
		}
	}
	t.Logf("%d rounds: %d calls answered before SIGKILL, %d aliases made, %d records recovered at the next starts", len(logs), answered, len(made), recovered)
	if recovered == 0 {
		t.Log("no kill landed between a change and its record")
	} else if !strings.Contains(strings.Join(append(logs, s.stderr.String()), ""), "marked recovered") {
		t.Error("no start that recovered records said so")
	}
	if code, out := auditVerify(t, dir); code != 0 {
		t.Fatalf("kms audit verify: exit %d\n%s", code, out)
	}
}

// countRecovered is the number of records of dir's trail marked
// recovered, read while its server runs.
func countRecovered(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, ev := range auditJSON(t, dir, "--event", "CreateAlias") {
		if ev.AdditionalEventData != nil {
			n++
		}
	}
	return n
}

// A change whose record the trail refused (PostgreSQL refusing the row):
// the call is refused, its change stays made, and its record is written,
// marked recovered, once the trail takes records again, without a
// restart.
func TestChangeWhoseRecordWasRefusedIsRecordedLater(t *testing.T) {
	t.Parallel()
	nodes, dsn := startCluster(t, 1)
	c := nodes[0].client(t)
	ctx := testCtx(t)
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	pool, err := pgxpool.New(ctx, dsn)
	noErr(t, err, "connect to %s", dsn)
	defer pool.Close()
	_, err = pool.Exec(ctx, `ALTER TABLE kms_audit_records ADD CONSTRAINT refuse CHECK (seq < 0) NOT VALID`)
	noErr(t, err, "make the trail refuse records")
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: ck.KeyMetadata.KeyId, Tags: []types.Tag{{TagKey: aws.String("made"), TagValue: aws.String("unrecorded")}}})
	if code := apiErrorCode(err); code != "KMSInternalException" {
		t.Fatalf("TagResource whose record the trail refused: %v", err)
	}
	refused := failedRequestID(t, err)
	_, err = pool.Exec(ctx, `ALTER TABLE kms_audit_records DROP CONSTRAINT refuse`)
	noErr(t, err, "let the trail take records again")

	var rec map[string]any
	waitFor(t, 15*time.Second, "the refused call's record", func() error {
		rows, err := pool.Query(ctx, `SELECT line FROM kms_audit_records`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line []byte
			if err := rows.Scan(&line); err != nil {
				return err
			}
			var l struct {
				Event map[string]any `json:"event"`
			}
			if err := json.Unmarshal(line, &l); err == nil && l.Event["requestID"] == refused {
				rec = l.Event
				return nil
			}
		}
		return fmt.Errorf("no record of request %s", refused)
	})
	if extra, _ := rec["additionalEventData"].(map[string]any); extra["recovered"] != true || rec["eventName"] != "TagResource" || rec["errorCode"] != nil {
		t.Fatalf("record of the refused call: %v", rec)
	}
	tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: ck.KeyMetadata.KeyId})
	noErr(t, err, "ListResourceTags")
	if len(tags.Tags) != 1 || *tags.Tags[0].TagKey != "made" {
		t.Fatalf("tags: %+v, want the refused call's", tags.Tags)
	}
	waitSigned(t, dsn)
	clusterEvents(t, dsn) // every chain verifies
}
