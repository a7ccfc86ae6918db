package tenants

import (
	"reflect"
	"testing"
)

// fill sets every field reachable from v to something not zero, making
// pointers, maps and slices along the way.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Float64:
		v.SetFloat(1)
	}
}

// shared names the first pointer, map or slice a and b share.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if !a.IsNil() && a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
		if a.Kind() == reflect.Pointer && !a.IsNil() {
			return shared(a.Elem(), b.Elem(), path)
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if s := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// TestCloneSharesNothing: a tenant with every field set and its clone
// share no pointer, map or slice, so a field added later that Clone does
// not copy fails here.
func TestCloneSharesNothing(t *testing.T) {
	var orig Tenant
	fill(reflect.ValueOf(&orig).Elem())
	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone differs from the original")
	}
	if s := shared(reflect.ValueOf(orig), reflect.ValueOf(c), "Tenant"); s != "" {
		t.Fatalf("clone shares %s with the original", s)
	}
}
