namespace Broker.Diagnostics.Status;

/// <summary>What a backend tells the status page about itself: its state and its destinations.</summary>
internal interface IBackendStatus
{
    /// <summary>"in-memory" or "rabbitmq".</summary>
    string Kind { get; }

    /// <summary>"up" (in-memory), "connected" or "disconnected" (RabbitMQ).</summary>
    string State { get; }

    /// <summary>Times the backend's link was re-established after being lost (0 for in-memory).</summary>
    long Reconnects { get; }

    /// <summary>Messages published through this backend, by destination.</summary>
    PublishCounters Publishes { get; }

    /// <summary>Adds this node's destinations that have subscribers or waiting messages, by destination header value.</summary>
    void CollectDestinations(IDictionary<string, DestinationUsage> into);
}

/// <summary>A destination as this node sees it.</summary>
/// <param name="Subscribers">This node's subscriptions to it (topic subscribers or queue consumers).</param>
/// <param name="Depth">Messages waiting in it; null where the backend cannot tell cheaply (RabbitMQ) or it has no depth (topics).</param>
internal readonly record struct DestinationUsage(int Subscribers, int? Depth);
