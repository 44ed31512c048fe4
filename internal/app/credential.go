package app

import (
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/jitaccess/jitaccess/internal/graph"
)

// credential is the app's Entra identity: the managed identity in Azure
// (IDENTITY_ENDPOINT or MSI_ENDPOINT set; clientID, the app's
// AZURE_CLIENT_ID, selects a user-assigned one); elsewhere azidentity's
// default chain (environment, workload identity, Azure CLI for developers).
func credential(getenv func(string) string, clientID string) (azcore.TokenCredential, error) {
	if getenv("IDENTITY_ENDPOINT") != "" || getenv("MSI_ENDPOINT") != "" {
		return graph.NewManagedIdentityCredential(clientID)
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("no Azure credential (not in Azure, and azidentity's default chain failed): %w", err)
	}
	return cred, nil
}
