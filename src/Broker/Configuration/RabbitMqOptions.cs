using System.ComponentModel.DataAnnotations;

namespace Broker.Configuration;

/// <summary>Which backend carries messages.</summary>
public enum BackendKind
{
    /// <summary>One node, messages in memory only (the default).</summary>
    InMemory,

    /// <summary>RabbitMQ: several nodes, durability, and existing exchanges and queues.</summary>
    RabbitMq,
}

/// <summary>The RabbitMQ backend (<c>Broker:RabbitMq</c>).</summary>
public sealed class RabbitMqOptions
{
    /// <summary>The AMQP URI, e.g. <c>amqp://guest:guest@localhost:5672/</c>.</summary>
    public string Uri { get; set; } = "amqp://guest:guest@localhost:5672/";

    /// <summary><c>/topic/X</c> is the fanout exchange named this prefix followed by X.</summary>
    public string TopicExchangePrefix { get; set; } = "stomp.topic.";

    /// <summary>Temporary reply queues are named this prefix, the session and the name the client gave.</summary>
    public string TemporaryQueuePrefix { get; set; } = "stomp.temp.";

    /// <summary>First delay before reconnecting after RabbitMQ went away; doubles each failed try.</summary>
    public TimeSpan ReconnectMinDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest delay between reconnect tries.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a SEND waits for RabbitMQ's publisher confirm before it is refused.</summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Prefetch for auto-ack subscriptions and for a node's topic queues (client-ack ones use their prefetch-count).</summary>
    [Range(1, ushort.MaxValue)]
    public int DefaultPrefetch { get; set; } = 256;
}
