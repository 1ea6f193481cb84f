namespace Broker.Routing;

/// <summary>
/// Where messages go: the in-memory backend for one node, or RabbitMQ for several. Sessions publish and subscribe
/// through it; it calls back into <see cref="IMessageConsumer"/> to deliver.
/// </summary>
public interface IMessageBackend
{
    /// <summary>Publishes a message. Completes when the backend has taken it (a RECEIPT may then be sent).</summary>
    /// <exception cref="DestinationException">The destination is not one this backend serves.</exception>
    ValueTask PublishAsync(Destination destination, BrokerMessage message, CancellationToken cancellationToken);

    /// <summary>Starts delivering messages of <paramref name="destination"/> to <paramref name="consumer"/>.</summary>
    /// <exception cref="DestinationException">The destination is not one this backend serves.</exception>
    ValueTask<IConsumerBinding> SubscribeAsync(Destination destination, IMessageConsumer consumer, CancellationToken cancellationToken);

    /// <summary>Removes a connection's temporary queue (named as in <c>/reply-queue/NAME</c>) when the connection closes.</summary>
    ValueTask DeleteTemporaryQueueAsync(string name, CancellationToken cancellationToken);
}

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
