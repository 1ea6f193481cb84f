using System.Globalization;
using System.Text;
using Broker.Routing;
using Broker.Stomp;
using RabbitMQ.Client;

namespace Broker.Backends.RabbitMq;

/// <summary>
/// STOMP headers to AMQP properties and headers, and back, as RabbitMQ's STOMP plugin maps them: the well-known
/// headers become properties, every other header an AMQP header. An AMQP message-id comes back as
/// <c>amqp-message-id</c>, because a MESSAGE's own <c>message-id</c> is the broker's delivery id. A
/// <c>/reply-queue/NAME</c> reply-to carries the AMQP name of the temporary queue in RabbitMQ (prefix included), as the
/// plugin's does, so that a plain AMQP responder can reply through the default exchange.
/// </summary>
internal static class AmqpMessageMapper
{
    public const string AmqpMessageIdHeader = "amqp-message-id";

    private const string ReplyQueuePrefix = "/reply-queue/";

    public static BasicProperties ToAmqp(BrokerMessage message, string temporaryQueuePrefix)
    {
        var properties = new BasicProperties();
        Dictionary<string, object?>? headers = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, value) in message.Template.GetHeaders())
        {
            // Repeated headers: the first one counts (STOMP 1.2).
            if (!seen.Add(name) || name is "destination")
            {
                continue;
            }

            switch (name)
            {
                case "content-type": properties.ContentType = value; break;
                case "content-encoding": properties.ContentEncoding = value; break;
                case "correlation-id": properties.CorrelationId = value; break;
                case "reply-to": properties.ReplyTo = ReplyToAmqp(value, temporaryQueuePrefix); break;
                case "message-id" or AmqpMessageIdHeader: properties.MessageId = value; break;
                case "persistent": properties.DeliveryMode = value == "true" ? DeliveryModes.Persistent : DeliveryModes.Transient; break;
                case "priority" when byte.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var priority): properties.Priority = priority; break;
                case "expiration": properties.Expiration = value; break;
                case "type": properties.Type = value; break;
                case "user-id": properties.UserId = value; break;
                case "app-id": properties.AppId = value; break;
                case "timestamp" when long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seconds):
                    properties.Timestamp = new AmqpTimestamp(seconds);
                    break;
                default:
                    (headers ??= new(StringComparer.Ordinal))[name] = Encoding.UTF8.GetBytes(value);
                    break;
            }
        }

        properties.Headers = headers;
        return properties;
    }

    /// <summary>A MESSAGE for an AMQP delivery; the body is copied (the client library owns the delivery's buffer).</summary>
    public static BrokerMessage ToStomp(string destination, IReadOnlyBasicProperties properties, ReadOnlySpan<byte> body, StompHeaderTable scratch, string temporaryQueuePrefix)
    {
        scratch.Clear();
        scratch.Add("destination", destination);
        Add(scratch, "content-type", properties.ContentType);
        Add(scratch, "content-encoding", properties.ContentEncoding);
        Add(scratch, "correlation-id", properties.CorrelationId);
        Add(scratch, "reply-to", ReplyToStomp(properties.ReplyTo, temporaryQueuePrefix));
        Add(scratch, AmqpMessageIdHeader, properties.MessageId);
        if (properties.IsDeliveryModePresent())
        {
            scratch.Add("persistent", properties.Persistent ? "true" : "false");
        }

        if (properties.IsPriorityPresent())
        {
            scratch.Add("priority", properties.Priority.ToString(CultureInfo.InvariantCulture));
        }

        Add(scratch, "expiration", properties.Expiration);
        Add(scratch, "type", properties.Type);
        Add(scratch, "user-id", properties.UserId);
        Add(scratch, "app-id", properties.AppId);
        if (properties.IsTimestampPresent())
        {
            scratch.Add("timestamp", properties.Timestamp.UnixTime.ToString(CultureInfo.InvariantCulture));
        }

        if (properties.Headers is { } headers)
        {
            foreach (var (name, value) in headers)
            {
                if (ToText(value) is { } text && !IsReserved(name))
                {
                    scratch.Add(name, text);
                }
            }
        }

        return new BrokerMessage(destination, new StompMessageTemplate(new StompHeaders(scratch), body.ToArray()));
    }

    // "/reply-queue/NAME" names the queue "{prefix}NAME" in RabbitMQ: say so to AMQP consumers, and map it back.
    private static string ReplyToAmqp(string value, string prefix) =>
        value.StartsWith(ReplyQueuePrefix, StringComparison.Ordinal) ? ReplyQueuePrefix + prefix + value[ReplyQueuePrefix.Length..] : value;

    private static string? ReplyToStomp(string? value, string prefix) =>
        value is not null && value.StartsWith(ReplyQueuePrefix + prefix, StringComparison.Ordinal) && prefix.Length > 0
            ? ReplyQueuePrefix + value[(ReplyQueuePrefix.Length + prefix.Length)..]
            : value;

    private static void Add(StompHeaderTable table, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            table.Add(name, value);
        }
    }

    // Headers the broker sets itself on every MESSAGE, and the sequence number RabbitMQ.Client's confirm tracking adds.
    private static bool IsReserved(string name) =>
        name is "destination" or "subscription" or "message-id" or "ack" or "content-length" or "redelivered" or "x-dotnet-pub-seq-no";

    private static string? ToText(object? value) => value switch
    {
        null => null,
        byte[] utf8 => Encoding.UTF8.GetString(utf8),
        string text => text,
        bool flag => flag ? "true" : "false",
        AmqpTimestamp timestamp => timestamp.UnixTime.ToString(CultureInfo.InvariantCulture),
        IFormattable number => number.ToString(null, CultureInfo.InvariantCulture),
        _ => null, // nested tables and arrays have no STOMP form
    };
}
