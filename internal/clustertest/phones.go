package clustertest

import (
	"fmt"

	"github.com/parleyhq/parley/wire"
)

// Partition is the parley.inbound partition of phone's session among n,
// as Parley's producers place it.
func Partition(phone string, n int) int {
	return int(wire.Partition(wire.Key(Tenant, phone), n))
}

// Phones makes count customer numbers spread evenly over the partitions,
// ordered so that consecutive numbers fall in different partitions: any
// run of them is spread over the nodes too, so a test that gives a role to
// a few consecutive customers has that role on every node.
func Phones(count, partitions int) []string {
	buckets := make([][]string, partitions)
	per := (count + partitions - 1) / partitions
	for i, filled := 0, 0; filled < partitions; i++ {
		phone := fmt.Sprintf("+4477009%05d", i)
		p := Partition(phone, partitions)
		if len(buckets[p]) < per {
			buckets[p] = append(buckets[p], phone)
			if len(buckets[p]) == per {
				filled++
			}
		}
	}
	var out []string
	for round := 0; len(out) < count; round++ {
		for p := range buckets {
			if len(out) < count {
				out = append(out, buckets[p][round])
			}
		}
	}
	return out
}
