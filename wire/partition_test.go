package wire

import (
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

// The placement must agree with the producers on where a key lives.
func TestPartitionAgreesWithKafkaGosMurmur2(t *testing.T) {
	b := &kafka.Murmur2Balancer{}
	for _, n := range []int{1, 3, 8, 12} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for i := range 2000 {
			key := Key("tenant", fmt.Sprintf("+4477009%05d", i))
			if got, want := Partition(key, n), b.Balance(kafka.Message{Key: key}, parts...); int(got) != want {
				t.Fatalf("key %s, %d partitions: got %d, kafka-go %d", key, n, got, want)
			}
		}
	}
}
