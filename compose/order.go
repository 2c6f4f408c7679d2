package compose

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// cycleError is a depends_on cycle; path starts and ends with the same
// service.
type cycleError struct{ path []string }

func (e *cycleError) Error() string {
	return fmt.Sprintf("dependency cycle: %s (remove one of these depends_on)", strings.Join(e.path, " -> "))
}

func asCycle(err error, target **cycleError) bool { return errors.As(err, target) }

// dependencyOrder lists the active services so that each comes after every
// active service it depends on; ties are broken by name so the order is
// stable. A cycle is an error naming it.
func dependencyOrder(p *types.Project) ([]string, error) {
	var (
		order []string
		state = map[string]int{} // 0 new, 1 visiting, 2 done
		stack []string
		visit func(string) error
	)
	visit = func(n string) error {
		switch state[n] {
		case 2:
			return nil
		case 1:
			i := slices.Index(stack, n)
			return &cycleError{path: append(slices.Clone(stack[i:]), n)}
		}
		state[n] = 1
		stack = append(stack, n)
		for _, dep := range sortedKeys(p.Services[n].DependsOn) {
			if _, ok := p.Services[dep]; !ok {
				continue
			}
			if err := visit(dep); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range sortedKeys(p.Services) {
		if err := visit(n); err != nil {
			return sortedKeys(p.Services), err
		}
	}
	return order, nil
}
