// Command terraform-provider-sym is a stand-in for the symopsio/sym
// Terraform provider, for infra/e2e only: the real provider cannot be
// installed on a machine without the Terraform registry, and
// infra/environments/prod requires it even with manage_sym = false (a
// provider is installed and configured when a module calls for it, even a
// module with count = 0).
//
// It declares what Terraform needs to load the environment: the provider's
// configuration (org) and the resource types modules sym_runtime and
// sym_flow use, with the arguments of the provider's documented schema
// (infra/symchecks_test.go, symSchema), every one optional and of any type.
// It manages nothing: planning, reading or applying any Sym resource fails
// with a diagnostic saying so, so a run with manage_sym = true stops at the
// plan instead of pretending to create Sym's half.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tfprotov5/tf5server"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// resources are the Sym resource types of modules sym_runtime and sym_flow
// and their arguments (symSchema of infra/symchecks_test.go).
var resources = map[string]struct {
	attrs  []string
	blocks map[string]block
}{
	"sym_integration":     {attrs: []string{"type", "name", "external_id", "label", "settings"}},
	"sym_runtime":         {attrs: []string{"name", "context_id", "label"}},
	"sym_environment":     {attrs: []string{"name", "error_logger_id", "integrations", "label", "log_destination_ids", "runtime_id"}},
	"sym_error_logger":    {attrs: []string{"integration_id", "destination"}},
	"sym_log_destination": {attrs: []string{"type", "integration_id", "settings"}},
	"sym_target":          {attrs: []string{"type", "name", "label", "settings", "field_bindings"}},
	"sym_strategy":        {attrs: []string{"type", "name", "targets", "implementation", "integration_id", "label", "settings"}},
	"sym_flow": {
		attrs: []string{"name", "implementation", "environment_id", "label", "vars"},
		blocks: map[string]block{"params": {
			attrs: []string{"additional_header_text", "allow_guest_interaction", "allow_revoke", "allowed_sources", "schedule_deescalation", "strategy_id"},
			blocks: map[string]block{"prompt_field": {
				attrs: []string{"name", "type", "allowed_values", "default", "label", "prefetch", "required"},
			}},
		}},
	},
}

type block struct {
	attrs  []string
	blocks map[string]block
}

func schemaBlock(attrs []string, blocks map[string]block, withID bool) *tfprotov5.SchemaBlock {
	b := &tfprotov5.SchemaBlock{}
	if withID {
		b.Attributes = append(b.Attributes, &tfprotov5.SchemaAttribute{Name: "id", Type: tftypes.String, Computed: true})
	}
	for _, a := range attrs {
		b.Attributes = append(b.Attributes, &tfprotov5.SchemaAttribute{Name: a, Type: tftypes.DynamicPseudoType, Optional: true})
	}
	for name, nb := range blocks {
		b.BlockTypes = append(b.BlockTypes, &tfprotov5.SchemaNestedBlock{
			TypeName: name,
			Nesting:  tfprotov5.SchemaNestedBlockNestingModeList,
			Block:    schemaBlock(nb.attrs, nb.blocks, false),
		})
	}
	return b
}

// managesNothing is the answer to every call that would manage a Sym resource.
var managesNothing = []*tfprotov5.Diagnostic{{
	Severity: tfprotov5.DiagnosticSeverityError,
	Summary:  "Sym stand-in provider",
	Detail:   "this is infra/e2e's stand-in for symopsio/sym: it manages no Sym resource; apply with manage_sym = false",
}}

type provider struct{}

func (provider) GetMetadata(context.Context, *tfprotov5.GetMetadataRequest) (*tfprotov5.GetMetadataResponse, error) {
	r := &tfprotov5.GetMetadataResponse{}
	for name := range resources {
		r.Resources = append(r.Resources, tfprotov5.ResourceMetadata{TypeName: name})
	}
	return r, nil
}

func (provider) GetProviderSchema(context.Context, *tfprotov5.GetProviderSchemaRequest) (*tfprotov5.GetProviderSchemaResponse, error) {
	r := &tfprotov5.GetProviderSchemaResponse{
		Provider: &tfprotov5.Schema{Block: &tfprotov5.SchemaBlock{Attributes: []*tfprotov5.SchemaAttribute{
			{Name: "org", Type: tftypes.String, Required: true},
		}}},
		ResourceSchemas:   map[string]*tfprotov5.Schema{},
		DataSourceSchemas: map[string]*tfprotov5.Schema{},
	}
	for name, res := range resources {
		r.ResourceSchemas[name] = &tfprotov5.Schema{Block: schemaBlock(res.attrs, res.blocks, true)}
	}
	return r, nil
}

func (provider) GetResourceIdentitySchemas(context.Context, *tfprotov5.GetResourceIdentitySchemasRequest) (*tfprotov5.GetResourceIdentitySchemasResponse, error) {
	return &tfprotov5.GetResourceIdentitySchemasResponse{}, nil
}

func (provider) PrepareProviderConfig(_ context.Context, req *tfprotov5.PrepareProviderConfigRequest) (*tfprotov5.PrepareProviderConfigResponse, error) {
	return &tfprotov5.PrepareProviderConfigResponse{PreparedConfig: req.Config}, nil
}

func (provider) ConfigureProvider(context.Context, *tfprotov5.ConfigureProviderRequest) (*tfprotov5.ConfigureProviderResponse, error) {
	return &tfprotov5.ConfigureProviderResponse{}, nil
}

func (provider) StopProvider(context.Context, *tfprotov5.StopProviderRequest) (*tfprotov5.StopProviderResponse, error) {
	return &tfprotov5.StopProviderResponse{}, nil
}

func (provider) ValidateResourceTypeConfig(context.Context, *tfprotov5.ValidateResourceTypeConfigRequest) (*tfprotov5.ValidateResourceTypeConfigResponse, error) {
	return &tfprotov5.ValidateResourceTypeConfigResponse{}, nil
}

func (provider) UpgradeResourceState(context.Context, *tfprotov5.UpgradeResourceStateRequest) (*tfprotov5.UpgradeResourceStateResponse, error) {
	return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: managesNothing}, nil
}

func (provider) ReadResource(context.Context, *tfprotov5.ReadResourceRequest) (*tfprotov5.ReadResourceResponse, error) {
	return &tfprotov5.ReadResourceResponse{Diagnostics: managesNothing}, nil
}

func (provider) PlanResourceChange(context.Context, *tfprotov5.PlanResourceChangeRequest) (*tfprotov5.PlanResourceChangeResponse, error) {
	return &tfprotov5.PlanResourceChangeResponse{Diagnostics: managesNothing}, nil
}

func (provider) ApplyResourceChange(context.Context, *tfprotov5.ApplyResourceChangeRequest) (*tfprotov5.ApplyResourceChangeResponse, error) {
	return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: managesNothing}, nil
}

func (provider) ImportResourceState(context.Context, *tfprotov5.ImportResourceStateRequest) (*tfprotov5.ImportResourceStateResponse, error) {
	return &tfprotov5.ImportResourceStateResponse{Diagnostics: managesNothing}, nil
}

func (provider) MoveResourceState(context.Context, *tfprotov5.MoveResourceStateRequest) (*tfprotov5.MoveResourceStateResponse, error) {
	return &tfprotov5.MoveResourceStateResponse{Diagnostics: managesNothing}, nil
}

func (provider) UpgradeResourceIdentity(context.Context, *tfprotov5.UpgradeResourceIdentityRequest) (*tfprotov5.UpgradeResourceIdentityResponse, error) {
	return &tfprotov5.UpgradeResourceIdentityResponse{Diagnostics: managesNothing}, nil
}

func (provider) ValidateDataSourceConfig(context.Context, *tfprotov5.ValidateDataSourceConfigRequest) (*tfprotov5.ValidateDataSourceConfigResponse, error) {
	return &tfprotov5.ValidateDataSourceConfigResponse{Diagnostics: managesNothing}, nil
}

func (provider) ReadDataSource(context.Context, *tfprotov5.ReadDataSourceRequest) (*tfprotov5.ReadDataSourceResponse, error) {
	return &tfprotov5.ReadDataSourceResponse{Diagnostics: managesNothing}, nil
}

func (provider) CallFunction(context.Context, *tfprotov5.CallFunctionRequest) (*tfprotov5.CallFunctionResponse, error) {
	return &tfprotov5.CallFunctionResponse{Error: &tfprotov5.FunctionError{Text: "the Sym stand-in has no function"}}, nil
}

func (provider) GetFunctions(context.Context, *tfprotov5.GetFunctionsRequest) (*tfprotov5.GetFunctionsResponse, error) {
	return &tfprotov5.GetFunctionsResponse{}, nil
}

func (provider) ValidateEphemeralResourceConfig(context.Context, *tfprotov5.ValidateEphemeralResourceConfigRequest) (*tfprotov5.ValidateEphemeralResourceConfigResponse, error) {
	return &tfprotov5.ValidateEphemeralResourceConfigResponse{Diagnostics: managesNothing}, nil
}

func (provider) OpenEphemeralResource(context.Context, *tfprotov5.OpenEphemeralResourceRequest) (*tfprotov5.OpenEphemeralResourceResponse, error) {
	return &tfprotov5.OpenEphemeralResourceResponse{Diagnostics: managesNothing}, nil
}

func (provider) RenewEphemeralResource(context.Context, *tfprotov5.RenewEphemeralResourceRequest) (*tfprotov5.RenewEphemeralResourceResponse, error) {
	return &tfprotov5.RenewEphemeralResourceResponse{Diagnostics: managesNothing}, nil
}

func (provider) CloseEphemeralResource(context.Context, *tfprotov5.CloseEphemeralResourceRequest) (*tfprotov5.CloseEphemeralResourceResponse, error) {
	return &tfprotov5.CloseEphemeralResourceResponse{Diagnostics: managesNothing}, nil
}

func main() {
	if err := tf5server.Serve("registry.terraform.io/symopsio/sym", func() tfprotov5.ProviderServer { return provider{} }); err != nil {
		fmt.Fprintln(os.Stderr, "terraform-provider-sym (stand-in):", err)
		os.Exit(1)
	}
}
