namespace Broker.Stomp.Tests.TestHelpers;

/// <summary>
/// The example frames of the STOMP 1.2 specification (https://stomp.github.io/stomp-specification-1.2.html), byte for
/// byte ("^@" is NUL), with what each must parse to. Where the specification shows a frame only by name (NACK,
/// COMMIT, ABORT, the other ack modes) the frame is built the way the text describes it.
/// </summary>
internal static class SpecExamples
{
    public const string ErrorBody =
        "The message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n-----\n"
        + "Did not contain a destination header, which is REQUIRED\nfor message propagation.\n";

    public static IReadOnlyList<Example> All { get; } =
    [
        new("Connecting: CONNECT", "CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
            StompCommand.Connect, [("accept-version", "1.2"), ("host", "stomp.github.org")]),
        new("CONNECT or STOMP: STOMP", "STOMP\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
            StompCommand.Stomp, [("accept-version", "1.2"), ("host", "stomp.github.org")]),
        new("Connecting: CONNECTED", "CONNECTED\nversion:1.2\n\n\0",
            StompCommand.Connected, [("version", "1.2")]),
        new("Protocol Negotiation: CONNECT", "CONNECT\naccept-version:1.0,1.1,2.0\nhost:stomp.github.org\n\n\0",
            StompCommand.Connect, [("accept-version", "1.0,1.1,2.0"), ("host", "stomp.github.org")]),
        new("Protocol Negotiation: CONNECTED", "CONNECTED\nversion:1.1\n\n\0",
            StompCommand.Connected, [("version", "1.1")]),
        new("Protocol Negotiation: ERROR", "ERROR\nversion:1.2,2.1\ncontent-type:text/plain\n\nSupported protocol versions are 1.2 2.1\0",
            StompCommand.Error, [("version", "1.2,2.1"), ("content-type", "text/plain")], "Supported protocol versions are 1.2 2.1"),
        new("Heart-beating: CONNECT", "CONNECT\naccept-version:1.2\nhost:stomp.github.org\nheart-beat:10000,5000\n\n\0",
            StompCommand.Connect, [("accept-version", "1.2"), ("host", "stomp.github.org"), ("heart-beat", "10000,5000")]),
        new("Heart-beating: CONNECTED", "CONNECTED\nversion:1.2\nheart-beat:0,0\nsession:s-1\nserver:Apache/1.3.9\n\n\0",
            StompCommand.Connected, [("version", "1.2"), ("heart-beat", "0,0"), ("session", "s-1"), ("server", "Apache/1.3.9")]),
        new("SEND", "SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0",
            StompCommand.Send, [("destination", "/queue/a"), ("content-type", "text/plain")], "hello queue a\n"),
        new("SUBSCRIBE ack:client", "SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n\0",
            StompCommand.Subscribe, [("id", "0"), ("destination", "/queue/foo"), ("ack", "client")]),
        new("SUBSCRIBE ack:auto", "SUBSCRIBE\nid:1\ndestination:/queue/foo\nack:auto\n\n\0",
            StompCommand.Subscribe, [("id", "1"), ("destination", "/queue/foo"), ("ack", "auto")]),
        new("SUBSCRIBE ack:client-individual", "SUBSCRIBE\nid:2\ndestination:/queue/foo\nack:client-individual\n\n\0",
            StompCommand.Subscribe, [("id", "2"), ("destination", "/queue/foo"), ("ack", "client-individual")]),
        new("SUBSCRIBE without ack", "SUBSCRIBE\nid:3\ndestination:/queue/foo\n\n\0",
            StompCommand.Subscribe, [("id", "3"), ("destination", "/queue/foo")]),
        new("UNSUBSCRIBE", "UNSUBSCRIBE\nid:0\n\n\0",
            StompCommand.Unsubscribe, [("id", "0")]),
        new("ACK", "ACK\nid:12345\ntransaction:tx1\n\n\0",
            StompCommand.Ack, [("id", "12345"), ("transaction", "tx1")]),
        new("NACK", "NACK\nid:12345\ntransaction:tx1\n\n\0",
            StompCommand.Nack, [("id", "12345"), ("transaction", "tx1")]),
        new("BEGIN", "BEGIN\ntransaction:tx1\n\n\0",
            StompCommand.Begin, [("transaction", "tx1")]),
        new("COMMIT", "COMMIT\ntransaction:tx1\n\n\0",
            StompCommand.Commit, [("transaction", "tx1")]),
        new("ABORT", "ABORT\ntransaction:tx1\n\n\0",
            StompCommand.Abort, [("transaction", "tx1")]),

        // The specification prints these two without the blank line after the headers.
        new("DISCONNECT (as printed, no blank line)", "DISCONNECT\nreceipt:77\n\0",
            StompCommand.Disconnect, [("receipt", "77")]),
        new("RECEIPT for DISCONNECT (as printed, no blank line)", "RECEIPT\nreceipt-id:77\n\0",
            StompCommand.Receipt, [("receipt-id", "77")]),
        new("DISCONNECT (with the blank line)", "DISCONNECT\nreceipt:77\n\n\0",
            StompCommand.Disconnect, [("receipt", "77")]),
        new("Header receipt: SEND", "SEND\ndestination:/queue/a\nreceipt:message-12345\n\nhello queue a\0",
            StompCommand.Send, [("destination", "/queue/a"), ("receipt", "message-12345")], "hello queue a"),
        new("MESSAGE", "MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0",
            StompCommand.Message, [("subscription", "0"), ("message-id", "007"), ("destination", "/queue/a"), ("content-type", "text/plain")], "hello queue a"),
        new("RECEIPT", "RECEIPT\nreceipt-id:message-12345\n\n\0",
            StompCommand.Receipt, [("receipt-id", "message-12345")]),

        // The specification's ERROR says content-length:171 for a 170-octet body; see ParserTests for the verbatim one.
        new("ERROR (content-length corrected to 170)",
            "ERROR\nreceipt-id:message-12345\ncontent-type:text/plain\ncontent-length:170\nmessage: malformed frame received\n\n" + ErrorBody + "\0",
            StompCommand.Error,
            [("receipt-id", "message-12345"), ("content-type", "text/plain"), ("content-length", "170"), ("message", " malformed frame received")],
            ErrorBody),
        new("Repeated Header Entries: MESSAGE", "MESSAGE\nfoo:World\nfoo:Hello\n\n\0",
            StompCommand.Message, [("foo", "World"), ("foo", "Hello")]),
        new("Header content-length: body with NUL octets", "SEND\ndestination:/queue/a\ncontent-length:7\n\nab\0cd\0e\0",
            StompCommand.Send, [("destination", "/queue/a"), ("content-length", "7")], "ab\0cd\0e"),
    ];

    /// <summary>Every example's name, once with LF and once with CR LF line ends.</summary>
    public static TheoryData<string, bool> Names()
    {
        var data = new TheoryData<string, bool>();
        foreach (var example in All)
        {
            data.Add(example.Name, false);
            data.Add(example.Name, true);
        }

        return data;
    }

    public static Example Get(string name, bool crLf)
    {
        var example = All.Single(e => e.Name == name);
        return crLf ? example.WithCrLf() : example;
    }

    internal sealed record Example(string Name, string Wire, StompCommand Command, (string Name, string Value)[] Headers, string Body = "")
    {
        public byte[] Bytes => Sequences.Utf8(Wire);

        public ParsedFrame Expected => new(Command, Headers, Sequences.Utf8(Body));

        // CR LF only in the command and header lines: the body keeps its bytes.
        public Example WithCrLf()
        {
            var split = Wire.IndexOf("\n\n", StringComparison.Ordinal);
            if (split < 0)
            {
                // No blank line: headers run up to the NUL.
                var nul = Wire.IndexOf('\0', StringComparison.Ordinal);
                return this with { Name = Name + " (CRLF)", Wire = Wire[..nul].Replace("\n", "\r\n", StringComparison.Ordinal) + Wire[nul..] };
            }

            var head = Wire[..(split + 2)].Replace("\n", "\r\n", StringComparison.Ordinal);
            return this with { Name = Name + " (CRLF)", Wire = head + Wire[(split + 2)..] };
        }
    }
}
