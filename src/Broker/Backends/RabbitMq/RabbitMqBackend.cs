using System.Collections.Concurrent;
using Broker.Configuration;
using Broker.Diagnostics.Status;
using Broker.Routing;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Broker.Backends.RabbitMq;

/// <summary>Whether the node's AMQP connection is up.</summary>
public enum BackendState
{
    /// <summary>Not connected yet, or reconnecting after RabbitMQ went away.</summary>
    Disconnected,

    /// <summary>Connected; exchanges, queues, bindings and consumers are in place.</summary>
    Connected,
}

/// <summary>
/// The RabbitMQ backend: one AMQP connection per node, a few confirm-mode channels for publishing and one channel per
/// consumer. <c>/topic/X</c> is a fanout exchange; each node with local subscribers binds one exclusive queue to it and
/// fans out locally, so a message reaches each subscriber on every node once. <c>/queue/X</c> is a durable queue whose
/// consumers on all nodes compete. When RabbitMQ goes away, STOMP sessions stay up: the backend reconnects with
/// exponential backoff and jitter and restores every live consumer, and a SEND meanwhile is refused, never dropped.
/// </summary>
internal sealed partial class RabbitMqBackend : IMessageBackend, IHostedService, IAsyncDisposable, IBackendStatus
{
    private const int PublisherChannels = 4;

    private readonly PublishCounters _publishes = new();
    private readonly RabbitMqOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<AmqpConsumerBinding, byte> _bindings = new();
    private readonly ConcurrentDictionary<string, NodeTopic> _topics = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _topicGate = new(1, 1);
    private readonly ConcurrentDictionary<string, byte> _verified = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _topologyGate = new(1, 1);
    private readonly ConfirmPublisher[] _publishers;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Timer _confirmDeadlines;
    private IChannel? _topologyChannel;
    private volatile IConnection? _connection;
    private Task _supervisor = Task.CompletedTask;
    private long _reconnects;
    private int _disposed;

    public RabbitMqBackend(IOptions<BrokerOptions> options, ILogger<RabbitMqBackend> logger)
    {
        _options = options.Value.RabbitMq;
        _logger = logger;
        _publishers = [.. Enumerable.Range(0, PublisherChannels).Select(_ => new ConfirmPublisher(_publishes))];

        // Overdue confirms are looked for four times per timeout period (at least once a second), not timed per message.
        var sweep = TimeSpan.FromTicks(Math.Clamp(_options.PublishTimeout.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.TicksPerSecond));
        _confirmDeadlines = new Timer(static state => ((RabbitMqBackend)state!).ExpireOverdueConfirms(), this, sweep, sweep);
    }

    /// <summary>Raised on each change of <see cref="State"/>.</summary>
    public event Action<BackendState>? StateChanged;

    public BackendState State => _connection is { IsOpen: true } ? BackendState.Connected : BackendState.Disconnected;

    /// <summary>How many times the connection was re-established after being lost.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    internal RabbitMqOptions Options => _options;

    internal ILogger Logger => _logger;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _supervisor = Task.Run(() => SuperviseAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _supervisor.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        foreach (var publisher in _publishers)
        {
            publisher.FailAllStopping();
        }

        if (_connection is { } connection)
        {
            _connection = null;
            await connection.CloseAsync(Constants.ReplySuccess, "broker stopping", TimeSpan.FromSeconds(5), abort: false, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            connection.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The container disposes this instance once per registration that hands it out (itself, IMessageBackend,
        // the hosted service): only the first call does anything.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await StopAsync(CancellationToken.None);
        await _confirmDeadlines.DisposeAsync();
        foreach (var publisher in _publishers)
        {
            publisher.Dispose();
        }

        _stopping.Dispose();
        _topicGate.Dispose();
        _topologyGate.Dispose();
    }

    // Connects, restores every consumer, waits for the connection to drop, and starts over, backing off between
    // failed tries (doubling from the minimum to the maximum delay, with ±20% jitter so nodes do not retry in step).
    private async Task SuperviseAsync(CancellationToken stopping)
    {
        var delay = _options.ReconnectMinDelay;
        var everConnected = false;
        while (!stopping.IsCancellationRequested)
        {
            IConnection? connection = null;
            try
            {
                var factory = new ConnectionFactory
                {
                    Uri = new Uri(_options.Uri),
                    AutomaticRecoveryEnabled = false, // recovery is ours: backoff, our log lines, our consumers
                    TopologyRecoveryEnabled = false,
                    ClientProvidedName = $"StompBroker {Environment.MachineName}",
                    RequestedHeartbeat = TimeSpan.FromSeconds(10),
                };
                connection = await factory.CreateConnectionAsync(stopping);
                var lost = new TaskCompletionSource<ShutdownEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
                connection.ConnectionShutdownAsync += (_, reason) =>
                {
                    lost.TrySetResult(reason);
                    return Task.CompletedTask;
                };

                _verified.Clear();
                _connection = connection;
                var restored = 0;
                foreach (var binding in _bindings.Keys)
                {
                    try
                    {
                        await binding.AttachAsync(connection, stopping);
                        restored++;
                    }
                    catch (OperationInterruptedException ex) when (IsChannelError(ex))
                    {
                        // Its queue is gone (a non-durable /amq/queue/ after a restart) or locked: that consumer
                        // cannot be restored, which must not keep the node from restoring the others.
                        LogRestoreFailed(_logger, binding.Destination, ex.ShutdownReason?.ReplyText ?? ex.Message);
                    }
                }

                if (everConnected)
                {
                    Interlocked.Increment(ref _reconnects);
                }

                everConnected = true;
                delay = _options.ReconnectMinDelay;
                LogConnected(_logger, Redact(_options.Uri), restored);
                StateChanged?.Invoke(BackendState.Connected);

                var reason = await lost.Task.WaitAsync(stopping);
                _connection = null;
                foreach (var binding in _bindings.Keys)
                {
                    binding.OnConnectionLost();
                }

                LogConnectionLost(_logger, reason.ReplyText);
                StateChanged?.Invoke(BackendState.Disconnected);
                continue; // reconnect at once; back off only if that fails
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is BrokerUnreachableException or OperationInterruptedException or IOException or AlreadyClosedException or TimeoutException or System.Net.Sockets.SocketException)
            {
                if (ReferenceEquals(_connection, connection))
                {
                    _connection = null;
                }

                LogConnectFailed(_logger, Redact(_options.Uri), ex.Message, delay);
                if (connection is not null)
                {
                    await connection.AbortAsync().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }

            try
            {
                await Task.Delay(Jitter(delay), stopping);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.ReconnectMaxDelay.Ticks));
        }
    }

    // RabbitMQ refused an operation on one queue or exchange (access, not found, locked, precondition); the link is fine.
    private static bool IsChannelError(OperationInterruptedException ex) => ex.ShutdownReason?.ReplyCode is 403 or 404 or 405 or 406;

    // The connection went away under an operation, rather than RabbitMQ refusing it.
    private static bool IsConnectionLoss(Exception ex) =>
        ex is AlreadyClosedException or IOException or ObjectDisposedException || (ex is OperationInterruptedException interrupted && !IsChannelError(interrupted));

    private static TimeSpan Jitter(TimeSpan delay) => delay * (0.8 + (Random.Shared.NextDouble() * 0.4));

    /// <inheritdoc/>
    public async ValueTask<Task> PublishAsync(Destination destination, BrokerMessage message, CancellationToken cancellationToken)
    {
        var connection = CurrentConnection();
        var (exchange, routingKey) = await ResolvePublishTargetAsync(connection, destination, cancellationToken);
        var properties = AmqpMessageMapper.ToAmqp(message, _options.TemporaryQueuePrefix);

        // One channel per sender and target, so a sender's messages to a destination keep their order, while senders
        // take the channels in turn: four producers on one queue publish over four channels, not in line for one
        // (RabbitMQ runs each channel in a process of its own; 5-10 % more throughput with four 4 KiB producers).
        var lane = (uint)HashCode.Combine(exchange, routingKey) + (ulong)message.Origin;
        var publisher = _publishers[(int)(lane % (uint)_publishers.Length)];
        try
        {
            // The confirm itself: it fails with the BackendUnavailableException the client is to see.
            return await publisher.PublishAsync(connection, exchange, routingKey, properties, message.Template.Body, destination.Value, cancellationToken);
        }
        catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or IOException or ObjectDisposedException)
        {
            throw new BackendUnavailableException("backend unavailable: the connection to RabbitMQ was lost before the message was sent", ex);
        }
    }

    private void ExpireOverdueConfirms()
    {
        foreach (var publisher in _publishers)
        {
            publisher.ExpireOverdue(_options.PublishTimeout);
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IConsumerBinding> SubscribeAsync(Destination destination, SubscriptionOptions options, IMessageConsumer consumer, CancellationToken cancellationToken)
    {
        var prefetch = (ushort)Math.Clamp(options.Prefetch == 0 ? _options.DefaultPrefetch : options.Prefetch, 1, ushort.MaxValue);
        switch (destination.Kind)
        {
            case DestinationKind.Topic when !options.Durable:
                return await SubscribeTopicAsync(destination, consumer, cancellationToken);
            case DestinationKind.Topic:
                return await AddBindingAsync(
                    QueueSpec.DurableSubscription(DurableQueueName(options), TopicExchange(destination.Name), "", options.AutoDelete),
                    destination.Value, consumer, prefetch, cancellationToken);
            case DestinationKind.Queue:
                return await AddBindingAsync(QueueSpec.Declared(destination.Name), destination.Value, consumer, prefetch, cancellationToken);
            case DestinationKind.AmqQueue:
                await VerifyAsync(QueueKey(destination.Name), ch => ch.QueueDeclarePassiveAsync(destination.Name), $"no queue '{destination.Name}' in RabbitMQ", cancellationToken);
                return await AddBindingAsync(QueueSpec.Existing(destination.Name), destination.Value, consumer, prefetch, cancellationToken);
            case DestinationKind.Exchange:
                await VerifyAsync(ExchangeKey(destination.Name), ch => ch.ExchangeDeclarePassiveAsync(destination.Name), $"no exchange '{destination.Name}' in RabbitMQ", cancellationToken);
                var spec = options.Durable
                    ? QueueSpec.DurableSubscription(DurableQueueName(options), destination.Name, destination.Key, options.AutoDelete)
                    : QueueSpec.Private(destination.Name, destination.Key);
                return await AddBindingAsync(spec, $"/exchange/{destination.Name}/", consumer, prefetch, cancellationToken, appendRoutingKey: true);
            case DestinationKind.TempQueue:
                return await AddBindingAsync(QueueSpec.Temporary(TemporaryQueue(destination.Name)), "/reply-queue/" + destination.Name, consumer, prefetch, cancellationToken);
            default:
                throw new DestinationException($"cannot subscribe to '{destination.Value}': reply queues are for sending replies to");
        }
    }

    /// <inheritdoc/>
    public async ValueTask DeleteTemporaryQueueAsync(string name, CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return; // exclusive to our connection: RabbitMQ deletes it with the connection
        }

        await WithTopologyChannelAsync(ch => ch.QueueDeleteAsync(TemporaryQueue(name), ifUnused: false, ifEmpty: false), cancellationToken)
            .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    string IBackendStatus.Kind => "rabbitmq";

    string IBackendStatus.State => State == BackendState.Connected ? "connected" : "disconnected";

    PublishCounters IBackendStatus.Publishes => _publishes;

    // Subscribers from this node's own structures; queue depths would take a round trip to RabbitMQ each, so are unknown.
    void IBackendStatus.CollectDestinations(IDictionary<string, DestinationUsage> into)
    {
        var topicBindings = new HashSet<AmqpConsumerBinding>();
        foreach (var topic in _topics.Values)
        {
            if (topic.Binding is { } binding)
            {
                topicBindings.Add(binding);
            }

            var subscribers = topic.SubscriberCount;
            if (subscribers > 0)
            {
                into["/topic/" + topic.Name] = new DestinationUsage(subscribers, null);
            }
        }

        foreach (var binding in _bindings.Keys)
        {
            if (!topicBindings.Contains(binding))
            {
                into[binding.Destination] = new DestinationUsage(into.TryGetValue(binding.Destination, out var usage) ? usage.Subscribers + 1 : 1, null);
            }
        }
    }

    internal string TopicExchange(string topic) => _options.TopicExchangePrefix + topic;

    internal void Remove(AmqpConsumerBinding binding) => _bindings.TryRemove(binding, out _);

    private IConnection CurrentConnection() =>
        _connection is { IsOpen: true } connection
            ? connection
            : throw new BackendUnavailableException("backend unavailable: not connected to RabbitMQ; try again shortly");

    private async ValueTask<(string Exchange, string RoutingKey)> ResolvePublishTargetAsync(IConnection connection, Destination destination, CancellationToken cancellationToken)
    {
        switch (destination.Kind)
        {
            case DestinationKind.Topic:
                await DeclareTopicExchangeAsync(destination.Name, cancellationToken);
                return (TopicExchange(destination.Name), "");
            case DestinationKind.Queue:
                await VerifyAsync(QueueKey(destination.Name), ch => ch.QueueDeclareAsync(destination.Name, durable: true, exclusive: false, autoDelete: false), null, cancellationToken);
                return ("", destination.Name);
            case DestinationKind.AmqQueue:
                // The default exchange drops a message for a queue that does not exist: check first, say so.
                await VerifyAsync(QueueKey(destination.Name), ch => ch.QueueDeclarePassiveAsync(destination.Name), $"no queue '{destination.Name}' in RabbitMQ", cancellationToken);
                return ("", destination.Name);
            case DestinationKind.Exchange:
                await VerifyAsync(ExchangeKey(destination.Name), ch => ch.ExchangeDeclarePassiveAsync(destination.Name), $"no exchange '{destination.Name}' in RabbitMQ", cancellationToken);
                return (destination.Name, destination.Key);
            case DestinationKind.ReplyQueue:
                return ("", TemporaryQueue(destination.Name));
            default:
                throw new DestinationException($"cannot send to '{destination.Value}' directly");
        }
    }

    internal Task DeclareTopicExchangeAsync(string topic, CancellationToken cancellationToken) =>
        VerifyAsync(ExchangeKey(TopicExchange(topic)), ch => ch.ExchangeDeclareAsync(TopicExchange(topic), ExchangeType.Fanout, durable: true, autoDelete: false), null, cancellationToken);

    // Declares or checks an exchange or queue once per connection. A failed check closes the channel it ran on, so
    // checks share one topology channel that is replaced after such a failure.
    private async Task VerifyAsync(string key, Func<IChannel, Task> declare, string? notFound, CancellationToken cancellationToken)
    {
        if (_verified.ContainsKey(key))
        {
            return;
        }

        try
        {
            await WithTopologyChannelAsync(declare, cancellationToken);
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode is 404 or 406)
        {
            throw new DestinationException(notFound is not null && ex.ShutdownReason.ReplyCode == 404 ? notFound : $"RabbitMQ refused: {ex.ShutdownReason.ReplyText}");
        }

        _verified.TryAdd(key, 0);
    }

    private async Task WithTopologyChannelAsync(Func<IChannel, Task> action, CancellationToken cancellationToken)
    {
        var connection = CurrentConnection();
        await _topologyGate.WaitAsync(cancellationToken);
        try
        {
            if (_topologyChannel is not { IsOpen: true } || !ReferenceEquals(_topologyConnection, connection))
            {
                _topologyChannel?.Dispose();
                _topologyChannel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
                _topologyConnection = connection;
            }

            await action(_topologyChannel);
        }
        catch (Exception ex) when (IsConnectionLoss(ex))
        {
            throw new BackendUnavailableException("backend unavailable: the connection to RabbitMQ was lost", ex);
        }
        finally
        {
            _topologyGate.Release();
        }
    }

    private IConnection? _topologyConnection;

    private async Task<IConsumerBinding> AddBindingAsync(QueueSpec spec, string destination, IMessageConsumer consumer, ushort prefetch, CancellationToken cancellationToken, bool appendRoutingKey = false)
    {
        var binding = new AmqpConsumerBinding(this, spec, destination, appendRoutingKey, consumer, prefetch);
        _bindings.TryAdd(binding, 0);
        if (_connection is { IsOpen: true } connection)
        {
            try
            {
                await binding.AttachAsync(connection, cancellationToken);
            }
            catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode is 404 or 405 or 406)
            {
                _bindings.TryRemove(binding, out _);
                throw new DestinationException($"RabbitMQ refused the subscription to '{destination}': {ex.ShutdownReason.ReplyText}");
            }
            catch (Exception ex) when (IsConnectionLoss(ex))
            {
                // The link went down meanwhile: like a subscription made while disconnected, it is attached on reconnect.
            }
        }

        return binding;
    }

    // Local subscribers of one topic share the node's exclusive queue; the first creates it, the last removes it.
    private async Task<IConsumerBinding> SubscribeTopicAsync(Destination destination, IMessageConsumer consumer, CancellationToken cancellationToken)
    {
        await _topicGate.WaitAsync(cancellationToken);
        try
        {
            if (!_topics.TryGetValue(destination.Name, out var topic))
            {
                topic = new NodeTopic(this, destination.Name);
                if (_connection is { IsOpen: true })
                {
                    await DeclareTopicExchangeAsync(destination.Name, cancellationToken);
                }

                topic.Binding = (AmqpConsumerBinding)await AddBindingAsync(
                    QueueSpec.Private(TopicExchange(destination.Name), ""), destination.Value, topic, (ushort)_options.DefaultPrefetch, cancellationToken);
                _topics[destination.Name] = topic;
            }

            return topic.Add(consumer);
        }
        finally
        {
            _topicGate.Release();
        }
    }

    internal async ValueTask RemoveFromTopicAsync(NodeTopic topic, IMessageConsumer consumer)
    {
        await _topicGate.WaitAsync();
        try
        {
            if (topic.Remove(consumer) == 0 && _topics.TryRemove(topic.Name, out _) && topic.Binding is { } binding)
            {
                await binding.DisposeAsync();
            }
        }
        finally
        {
            _topicGate.Release();
        }
    }

    private string TemporaryQueue(string name) => _options.TemporaryQueuePrefix + name;

    private static string DurableQueueName(SubscriptionOptions options) => options.QueueName ?? "stomp.durable." + options.Id;

    private static string QueueKey(string name) => "q:" + name;

    private static string ExchangeKey(string name) => "x:" + name;

    private static string Redact(string uri) =>
        System.Uri.TryCreate(uri, UriKind.Absolute, out var parsed) ? $"{parsed.Scheme}://{parsed.Host}:{parsed.Port}{parsed.AbsolutePath}" : "(invalid URI)";

    [LoggerMessage(100, LogLevel.Information, "RabbitMQ backend connected to {Uri}; {Bindings} consumers restored")]
    private static partial void LogConnected(ILogger logger, string uri, int bindings);

    [LoggerMessage(101, LogLevel.Warning, "RabbitMQ backend lost its connection: {Reason}; reconnecting")]
    private static partial void LogConnectionLost(ILogger logger, string reason);

    [LoggerMessage(102, LogLevel.Warning, "RabbitMQ backend cannot connect to {Uri}: {Error}; next try in about {Delay}")]
    private static partial void LogConnectFailed(ILogger logger, string uri, string error, TimeSpan delay);

    [LoggerMessage(103, LogLevel.Warning, "RabbitMQ backend could not restore the consumer of {Destination}: {Error}")]
    internal static partial void LogRestoreFailed(ILogger logger, string destination, string error);

    [LoggerMessage(104, LogLevel.Debug, "RabbitMQ backend could not settle a delivery: {Error}")]
    internal static partial void LogSettleFailed(ILogger logger, string error);
}
