# Turns `go test -bench` output into a table of every reported metric:
#   benchmark | metric | value
# (used by `make bench`; ns/op, B/op and allocs/op are left out).
/^Benchmark/ && NF >= 4 {
	name = $1
	sub(/-[0-9]+$/, "", name)
	for (i = 3; i + 1 <= NF; i += 2) {
		unit = $(i + 1)
		if (unit == "ns/op" || unit == "B/op" || unit == "allocs/op") continue
		rows[++n] = sprintf("| %-52s | %-22s | %14s |", name, unit, $i)
	}
}
END {
	printf "| %-52s | %-22s | %14s |\n", "benchmark", "metric", "value"
	printf "|%s|%s|%s|\n", "------------------------------------------------------", "------------------------", "----------------"
	for (i = 1; i <= n; i++) print rows[i]
}
