package ormplugin

import (
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Equal returns a WHERE condition "encrypted field = value" for a field with
// a blind index (`kms:"index=..."`). It compares the blind index column with
// the HMAC of value, so the caller never handles the HMAC:
//
//	db.Where(ormplugin.Equal("Email", "a@example.com")).First(&u)
//
// field is the Go field name or the column name of the encrypted field;
// value has the field's type (or its element type for pointers). A nil
// value matches NULL. Using Equal on a field without a blind index, or on a
// *gorm.DB without the plugin, fails the query.
func Equal(field string, value any) clause.Expression {
	return equalExpr{field: field, value: value}
}

type equalExpr struct {
	field string
	value any
}

// Build implements clause.Expression.
func (e equalExpr) Build(b clause.Builder) {
	stmt, ok := b.(*gorm.Statement)
	if !ok {
		return
	}
	fail := func(err error) {
		_ = stmt.AddError(err)
		_, _ = stmt.WriteString("1 = 0")
	}
	p, _ := stmt.DB.Config.Plugins[PluginName].(*Plugin)
	if p == nil {
		fail(fmt.Errorf("%w: Equal(%q) on a *gorm.DB without the plugin", ErrConfig, e.field))
		return
	}
	if stmt.Schema == nil {
		fail(fmt.Errorf("%w: Equal(%q) needs a model", ErrConfig, e.field))
		return
	}
	si := p.schemaInfo(stmt.Schema)
	fi := si.byName[e.field]
	if fi == nil || fi.index == nil {
		fail(fmt.Errorf("%w: Equal(%q): not an encrypted field with a blind index on %s", ErrConfig, e.field, stmt.Schema.Name))
		return
	}
	bidx, err := p.indexOf(stmt.Context, stmt.DB, fi.key(), e.value)
	if err != nil {
		fail(err)
		return
	}
	stmt.WriteQuoted(clause.Column{Table: clause.CurrentTable, Name: fi.index.DBName})
	if bidx == nil {
		_, _ = stmt.WriteString(" IS NULL")
		return
	}
	_, _ = stmt.WriteString(" = ")
	stmt.AddVar(stmt, bidx)
}
