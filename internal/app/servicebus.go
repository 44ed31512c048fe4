package app

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/config"
	"github.com/jitaccess/jitaccess/internal/servicebus"
)

// serviceBusSettings: the namespace (empty: no Service Bus), the requests
// queue the expire messages are scheduled on, and the notifications topic
// (empty: no notifications).
type serviceBusSettings struct {
	Namespace, Queue, Topic string
}

// serviceBus is scheduled expiry and notifications through Service Bus;
// nil ports when not configured.
type serviceBus struct {
	scheduler broker.ExpiryScheduler
	publisher broker.Publisher
	close     func()
}

func openServiceBus(s serviceBusSettings, cred azcore.TokenCredential) (serviceBus, error) {
	if s.Namespace == "" {
		return serviceBus{close: func() {}}, nil
	}
	client, err := azservicebus.NewClient(s.Namespace, cred, nil)
	if err != nil {
		return serviceBus{}, fmt.Errorf("setting %s: %w", config.EnvServiceBusNS, err)
	}
	queue, err := client.NewSender(s.Queue, nil)
	if err != nil {
		return serviceBus{}, fmt.Errorf("setting %s: %w", config.EnvRequestsQueue, err)
	}
	bus := serviceBus{scheduler: servicebus.NewScheduler(queue, nil)}
	closers := []func(context.Context) error{queue.Close}
	if s.Topic != "" {
		topic, err := client.NewSender(s.Topic, nil)
		if err != nil {
			return serviceBus{}, fmt.Errorf("setting %s: %w", config.EnvNotifyTopic, err)
		}
		bus.publisher = servicebus.NewPublisher(topic, nil)
		closers = append(closers, topic.Close)
	}
	closers = append(closers, client.Close)
	bus.close = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, c := range closers {
			_ = c(ctx)
		}
	}
	return bus, nil
}
