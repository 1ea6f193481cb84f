using Broker.Routing;
using Broker.Stomp;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Broker.Backends.RabbitMq;

/// <summary>What queue a consumer reads, and how to make it exist.</summary>
/// <param name="Name">The queue name; null for a server-named queue.</param>
/// <param name="Declare">Declare it (false: it must already exist).</param>
/// <param name="Durable">Survives a RabbitMQ restart.</param>
/// <param name="Exclusive">Belongs to this node's connection.</param>
/// <param name="AutoDelete">Deleted when its last consumer goes.</param>
/// <param name="BindExchange">Bind the queue to this exchange (null: no binding).</param>
/// <param name="BindKey">The binding key.</param>
internal sealed record QueueSpec(string? Name, bool Declare, bool Durable, bool Exclusive, bool AutoDelete, string? BindExchange, string BindKey)
{
    /// <summary><c>/queue/X</c>: a durable queue the broker declares.</summary>
    public static QueueSpec Declared(string name) => new(name, true, true, false, false, null, "");

    /// <summary><c>/amq/queue/Q</c>: an existing queue, not declared.</summary>
    public static QueueSpec Existing(string name) => new(name, false, false, false, false, null, "");

    /// <summary>A node's private queue on an exchange (topic fan-out, <c>/exchange/E/key</c>).</summary>
    public static QueueSpec Private(string exchange, string key) => new(null, true, false, true, true, exchange, key);

    /// <summary>A durable subscription's own named queue on an exchange.</summary>
    public static QueueSpec DurableSubscription(string name, string exchange, string key, bool autoDelete) => new(name, true, true, false, autoDelete, exchange, key);

    /// <summary>A connection's temporary reply queue.</summary>
    public static QueueSpec Temporary(string name) => new(name, true, false, true, false, null, "");
}

/// <summary>
/// One AMQP consumer on its own channel, feeding one <see cref="IMessageConsumer"/>. RabbitMQ's prefetch bounds what
/// is in flight; deliveries the consumer has no room for wait here (at most the prefetch) until it has. Re-attached to
/// each new connection after RabbitMQ comes back.
/// </summary>
internal sealed class AmqpConsumerBinding(
    RabbitMqBackend backend,
    QueueSpec spec,
    string destination,
    bool appendRoutingKey,
    IMessageConsumer consumer,
    ushort prefetch) : IConsumerBinding
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _attachGate = new(1, 1);
    private readonly StompHeaderTable _scratch = new();
    private readonly Queue<(BrokerMessage Message, bool Redelivered, AmqpSettlement Settlement)> _pending = new();
    private IChannel? _channel;
    private AckCoalescer? _acks;
    private IConnection? _owner;
    private bool _disposed;

    public string Destination => destination;

    public async Task AttachAsync(IConnection connection, CancellationToken cancellationToken)
    {
        await _attachGate.WaitAsync(cancellationToken);
        try
        {
            if (_disposed || (ReferenceEquals(_owner, connection) && _channel is { IsOpen: true }))
            {
                return;
            }

            var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            try
            {
                await channel.BasicQosAsync(0, prefetch, global: false, cancellationToken);
                var queue = spec.Name ?? "";
                if (spec.Declare)
                {
                    var declared = await channel.QueueDeclareAsync(queue, spec.Durable, spec.Exclusive, spec.AutoDelete, arguments: null, cancellationToken: cancellationToken);
                    queue = declared.QueueName;
                }

                if (spec.BindExchange is { } exchange)
                {
                    if (exchange.StartsWith(backend.Options.TopicExchangePrefix, StringComparison.Ordinal))
                    {
                        await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
                    }

                    await channel.QueueBindAsync(queue, exchange, spec.BindKey, cancellationToken: cancellationToken);
                }

                var amqpConsumer = new AsyncEventingBasicConsumer(channel);
                amqpConsumer.ReceivedAsync += OnReceivedAsync;
                lock (_gate)
                {
                    _pending.Clear();
                    _channel = channel;
                    _acks = new AckCoalescer(backend, channel);
                    _owner = connection;
                }

                await channel.BasicConsumeAsync(queue, autoAck: false, amqpConsumer, cancellationToken);
            }
            catch
            {
                lock (_gate)
                {
                    if (ReferenceEquals(_channel, channel))
                    {
                        _channel = null;
                        _owner = null;
                    }
                }

                await channel.AbortAsync(CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                channel.Dispose();
                throw;
            }
        }
        finally
        {
            _attachGate.Release();
        }
    }

    /// <summary>The connection is gone: its deliveries are void (RabbitMQ requeues them).</summary>
    public void OnConnectionLost()
    {
        lock (_gate)
        {
            _pending.Clear();
            _channel = null;
            _owner = null;
        }
    }

    public void OnRoomAvailable()
    {
        lock (_gate)
        {
            while (_pending.TryPeek(out var next) && consumer.TryDeliver(next.Message, next.Redelivered, next.Settlement))
            {
                _pending.Dequeue();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        IChannel? channel;
        AckCoalescer? acks;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _pending.Clear();
            channel = _channel;
            acks = _acks;
            _channel = null;
        }

        backend.Remove(this);
        if (channel is not null)
        {
            // Acks settled just before (an ACK then UNSUBSCRIBE) go out first, or RabbitMQ would redeliver those messages.
            if (acks is not null)
            {
                await acks.FlushAsync();
            }

            // Closing the channel hands its unacknowledged messages back to RabbitMQ, which redelivers them.
            await channel.CloseAsync().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            channel.Dispose();
        }

        _scratch.Dispose();
        _attachGate.Dispose();
    }

    private Task OnReceivedAsync(object sender, BasicDeliverEventArgs delivery)
    {
        var channel = ((AsyncEventingBasicConsumer)sender).Channel;
        var name = appendRoutingKey ? destination + delivery.RoutingKey : destination;
        lock (_gate)
        {
            if (_disposed || !ReferenceEquals(channel, _channel))
            {
                return Task.CompletedTask; // a stale channel's delivery: RabbitMQ requeues it when that channel closes
            }

            var message = AmqpMessageMapper.ToStomp(name, delivery.BasicProperties, delivery.Body.Span, _scratch, backend.Options.TemporaryQueuePrefix);
            var settlement = new AmqpSettlement(_acks!, delivery.DeliveryTag);
            if (_pending.Count > 0 || !consumer.TryDeliver(message, delivery.Redelivered, settlement))
            {
                _pending.Enqueue((message, delivery.Redelivered, settlement));
            }
        }

        return Task.CompletedTask;
    }
}

/// <summary>Settles one AMQP delivery, once, through its channel's <see cref="AckCoalescer"/>.</summary>
internal sealed class AmqpSettlement(AckCoalescer acks, ulong deliveryTag) : IDeliverySettlement
{
    private int _settled;

    public void Ack()
    {
        if (Interlocked.Exchange(ref _settled, 1) == 0)
        {
            acks.Ack(deliveryTag);
        }
    }

    public void Nack(bool requeue)
    {
        if (Interlocked.Exchange(ref _settled, 1) == 0)
        {
            acks.Nack(deliveryTag, requeue);
        }
    }
}

/// <summary>
/// A topic's local subscribers on this node. The node reads the topic once, through its own exclusive queue, and fans
/// each message out here; the AMQP delivery is acknowledged once every local subscriber has it queued.
/// </summary>
internal sealed class NodeTopic(RabbitMqBackend backend, string name) : IMessageConsumer
{
    private readonly Lock _gate = new();
    private IMessageConsumer[] _subscribers = [];

    public string Name => name;

    public AmqpConsumerBinding? Binding { get; set; }

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    public IConsumerBinding Add(IMessageConsumer subscriber)
    {
        lock (_gate)
        {
            _subscribers = [.. _subscribers, subscriber];
        }

        return new LocalSubscription(this, subscriber);
    }

    public int Remove(IMessageConsumer subscriber)
    {
        lock (_gate)
        {
            _subscribers = Array.FindAll(_subscribers, s => !ReferenceEquals(s, subscriber));
            return _subscribers.Length;
        }
    }

    public bool TryDeliver(BrokerMessage message, bool redelivered, IDeliverySettlement? settlement)
    {
        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            subscriber.TryDeliver(message, redelivered: false, settlement: null);
        }

        settlement?.Ack();
        return true;
    }

    private ValueTask RemoveAsync(IMessageConsumer subscriber) => backend.RemoveFromTopicAsync(this, subscriber);

    private sealed class LocalSubscription(NodeTopic topic, IMessageConsumer subscriber) : IConsumerBinding
    {
        public void OnRoomAvailable()
        {
        }

        public ValueTask DisposeAsync() => topic.RemoveAsync(subscriber);
    }
}
