package main
import (
 _ "github.com/microsoftgraph/msgraph-sdk-go"
 _ "github.com/Azure/azure-sdk-for-go/sdk/azidentity"
 _ "github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
 _ "github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
 _ "github.com/robfig/cron/v3"
 _ "github.com/sosodev/duration"
 _ "github.com/google/uuid"
)
func main(){}
