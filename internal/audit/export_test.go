package audit

import "github.com/jackc/pgx/v5/pgxpool"

// WritePostgres writes rows, through pool, as the records of chain from
// seq first on, as a Log on PostgreSQL writes a batch.
func WritePostgres(pool *pgxpool.Pool, chain string, rows []string, first uint64) error {
	var lines []byte
	var ends []int
	for _, r := range rows {
		lines = append(append(lines, r...), '\n')
		ends = append(ends, len(lines))
	}
	return (&pgSink{pool: pool, chain: chain}).write(lines, ends, first)
}
