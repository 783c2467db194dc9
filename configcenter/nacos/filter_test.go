package nacos_test

import (
	"reflect"
	"testing"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/filter"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// Whole-file encryption through the SDK's config filter chain (the "cipher-"
// dataId convention) would need a client-side way to add a filter. This test
// records why there is none in the pinned SDK, and fails when an upgrade
// adds one, so that the kmsd data-key filter can then be written:
//   - the chain is ConfigClient's unexported field configFilterChainManager;
//   - no method of ConfigClient or IConfigClient accepts a filter or chain;
//   - the listener type receives the content only, not the encrypted data key.
func TestSDKHasNoClientFilterRegistration(t *testing.T) {
	ct := reflect.TypeOf(config_client.ConfigClient{})
	f, ok := ct.FieldByName("configFilterChainManager")
	if !ok || f.IsExported() || f.Type != reflect.TypeOf((*filter.IConfigFilterChain)(nil)).Elem() {
		t.Fatalf("ConfigClient's filter chain field changed (%v, %v): revisit whole-file encryption", ok, f.Type)
	}
	filterT := reflect.TypeOf((*filter.IConfigFilter)(nil)).Elem()
	chainT := reflect.TypeOf((*filter.IConfigFilterChain)(nil)).Elem()
	for _, typ := range []reflect.Type{reflect.TypeOf(&config_client.ConfigClient{}), reflect.TypeOf((*config_client.IConfigClient)(nil)).Elem()} {
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			for j := range m.Type.NumIn() {
				if in := m.Type.In(j); in == filterT || in == chainT {
					t.Fatalf("%v.%s takes a %v: the SDK now lets a client register a filter", typ, m.Name, in)
				}
			}
			for j := range m.Type.NumOut() {
				if out := m.Type.Out(j); out == chainT {
					t.Fatalf("%v.%s returns the filter chain: the SDK now lets a client register a filter", typ, m.Name)
				}
			}
		}
	}
	if lt := reflect.TypeOf(vo.Listener(nil)); lt.NumIn() != 4 {
		t.Fatalf("vo.Listener now has %d parameters: it may carry the encrypted data key", lt.NumIn())
	}
}
