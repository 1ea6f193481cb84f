namespace Broker.Routing;

/// <summary>
/// Where messages go: the in-memory backend for one node, or RabbitMQ for several. Sessions publish and subscribe
/// through it; it calls back into <see cref="IMessageConsumer"/> to deliver.
/// </summary>
public interface IMessageBackend
{
    /// <summary>
    /// Publishes a message in two steps, so a session can keep many publishes in flight without losing their order.
    /// The returned <see cref="ValueTask{T}"/> completes once the message is handed over: a message published after
    /// that cannot overtake it. The task it yields completes when the backend has taken the message (a RECEIPT may
    /// then be sent), or fails with <see cref="BackendUnavailableException"/>.
    /// </summary>
    /// <exception cref="DestinationException">The destination is not one this backend serves.</exception>
    ValueTask<Task> PublishAsync(Destination destination, BrokerMessage message, CancellationToken cancellationToken);

    /// <summary>Starts delivering messages of <paramref name="destination"/> to <paramref name="consumer"/>.</summary>
    /// <exception cref="DestinationException">The destination is not one this backend serves.</exception>
    ValueTask<IConsumerBinding> SubscribeAsync(Destination destination, SubscriptionOptions options, IMessageConsumer consumer, CancellationToken cancellationToken);

    /// <summary>Removes a connection's temporary queue (named as in <c>/reply-queue/NAME</c>) when the connection closes.</summary>
    ValueTask DeleteTemporaryQueueAsync(string name, CancellationToken cancellationToken);
}

/// <summary>What a SUBSCRIBE asked for, beyond its destination.</summary>
/// <param name="Id">The subscription id (names durable queues when no queue name is given).</param>
/// <param name="ClientAck">Whether the client acknowledges (client or client-individual mode).</param>
/// <param name="Prefetch">Most unacknowledged messages; 0 is the backend's default.</param>
/// <param name="Durable">RabbitMQ plugin semantics: <c>durable:true</c> keeps a topic or exchange subscription's queue.</param>
/// <param name="AutoDelete">With <paramref name="Durable"/>: delete the queue once its last consumer goes.</param>
/// <param name="QueueName">The <c>x-queue-name</c> header: the queue to use for a durable subscription.</param>
public sealed record SubscriptionOptions(string Id, bool ClientAck, int Prefetch, bool Durable = false, bool AutoDelete = false, string? QueueName = null);

/// <summary>A subscription's link to the backend. Disposing it stops deliveries.</summary>
public interface IConsumerBinding : IAsyncDisposable
{
    /// <summary>The consumer has room again (acks came in or its outbound buffer drained): resume dispatch.</summary>
    void OnRoomAvailable();
}

/// <summary>A subscription as the backend sees it.</summary>
public interface IMessageConsumer
{
    /// <summary>
    /// Hands a message over; false when the consumer has no room (the queue then tries the next consumer and keeps the
    /// message). <paramref name="settlement"/> is null for topic messages, which are never redelivered. Never blocks.
    /// </summary>
    bool TryDeliver(BrokerMessage message, bool redelivered, IDeliverySettlement? settlement);
}

/// <summary>How a queue message is settled once its consumer acks or nacks it, or goes away.</summary>
public interface IDeliverySettlement
{
    /// <summary>The message is done with.</summary>
    void Ack();

    /// <summary>The message was refused or its consumer went away: back to the queue (marked redelivered) or dropped.</summary>
    void Nack(bool requeue);
}

/// <summary>A destination the backend cannot serve; the message goes into an ERROR frame.</summary>
public sealed class DestinationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DestinationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public DestinationException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public DestinationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
