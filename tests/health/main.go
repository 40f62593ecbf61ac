// health-check: what Argo CD and kstatus make of FineTuneRelease objects. For each JSON file
// given, it runs the Argo CD health check (manifests/argocd/health.lua, or -lua FILE) through
// gopher-lua, the interpreter Argo CD itself uses, with the object as the global `obj` the way
// Argo CD converts it; and sigs.k8s.io/cli-utils' kstatus (Flux's health checks, `kubectl
// wait`). Prints one JSON line per file: {"file", "argo": {status, message}, "kstatus":
// {status, message}}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type verdict struct {
	File    string `json:"file"`
	Argo    health `json:"argo"`
	Kstatus health `json:"kstatus"`
}

func main() {
	script := flag.String("lua", "manifests/argocd/health.lua", "the health check")
	flag.Parse()
	code, err := os.ReadFile(*script)
	if err != nil {
		fail(err)
	}
	for _, file := range flag.Args() {
		raw, err := os.ReadFile(file)
		if err != nil {
			fail(err)
		}
		// As the apiserver's objects reach Argo CD and kstatus: integers as int64.
		object := &unstructured.Unstructured{}
		if err := object.UnmarshalJSON(raw); err != nil {
			fail(fmt.Errorf("%s: %w", file, err))
		}
		argo, err := argoHealth(string(code), object.Object)
		if err != nil {
			fail(fmt.Errorf("%s: %w", file, err))
		}
		result, err := status.Compute(object)
		if err != nil {
			fail(fmt.Errorf("%s: kstatus: %w", file, err))
		}
		line, _ := json.Marshal(verdict{file, argo, health{result.Status.String(), result.Message}})
		fmt.Println(string(line))
	}
}

// argoHealth runs the script as Argo CD does: the base, table, string and math libraries only,
// `obj` set, and the returned table's status and message read back.
func argoHealth(code string, obj map[string]interface{}) (health, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(code); err != nil {
		return health{}, err
	}
	table, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return health{}, fmt.Errorf("the script returned %s, not a table", L.Get(-1).Type())
	}
	return health{lua.LVAsString(table.RawGetString("status")), lua.LVAsString(table.RawGetString("message"))}, nil
}

// toLua converts decoded JSON as Argo CD's decodeValue does: objects and arrays to tables
// (arrays 1-based), numbers to numbers, strings and booleans as they are, null to nil.
func toLua(L *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case map[string]interface{}:
		table := L.NewTable()
		for key, inner := range v {
			table.RawSetString(key, toLua(L, inner))
		}
		return table
	case []interface{}:
		table := L.NewTable()
		for _, inner := range v {
			table.Append(toLua(L, inner))
		}
		return table
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "health-check:", err)
	os.Exit(2)
}
