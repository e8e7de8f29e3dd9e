//! Test fixtures: a small self-made intent set of a clothing shop in en/es/it
//! and held-out queries (paraphrases, typos, missing accents, out-of-scope
//! messages) used by the matcher's tests and its tuning report.

use super::matcher::{Example, TrainingIntent};

/// (intent id, [(language, examples)]).
type Spec = (
    &'static str,
    &'static [(&'static str, &'static [&'static str])],
);

const SPECS: &[Spec] = &[
    (
        "opening_hours",
        &[
            (
                "en",
                &[
                    "When are you open?",
                    "What are your opening hours?",
                    "What time do you open?",
                    "What time do you close today?",
                    "Are you open on Saturday?",
                    "Are you open on Sundays?",
                    "business hours",
                ],
            ),
            (
                "es",
                &[
                    "¿A qué hora abren?",
                    "¿Cuál es el horario?",
                    "¿A qué hora cierran hoy?",
                    "¿Abren los sábados?",
                    "¿Están abiertos el domingo?",
                    "horario de atención",
                    "¿Cuándo abre la tienda?",
                ],
            ),
            (
                "it",
                &[
                    "Quando siete aperti?",
                    "Qual è l'orario di apertura?",
                    "A che ora aprite?",
                    "A che ora chiudete oggi?",
                    "Siete aperti il sabato?",
                    "Siete aperti la domenica?",
                    "orari del negozio",
                ],
            ),
        ],
    ),
    (
        "location",
        &[
            (
                "en",
                &[
                    "Where are you located?",
                    "What's your address?",
                    "Do you have a physical store?",
                    "Where is the shop?",
                    "How do I get to your store?",
                    "directions to the store",
                    "which metro stop is closest to the shop",
                ],
            ),
            (
                "es",
                &[
                    "¿Dónde está la tienda?",
                    "¿Cuál es la dirección?",
                    "¿Tienen tienda física?",
                    "¿Cómo llego a la tienda?",
                    "dirección de la tienda",
                    "¿Qué metro queda más cerca?",
                    "¿Dónde se encuentran?",
                ],
            ),
            (
                "it",
                &[
                    "Dove siete?",
                    "Qual è il vostro indirizzo?",
                    "Avete un negozio fisico?",
                    "Dove si trova il negozio?",
                    "Come arrivo al negozio?",
                    "indirizzo del negozio",
                    "qual è la fermata della metro più vicina",
                ],
            ),
        ],
    ),
    (
        "shipping_cost",
        &[
            (
                "en",
                &[
                    "How much is shipping?",
                    "What does delivery cost?",
                    "Is shipping free?",
                    "shipping costs",
                    "Do you charge for delivery?",
                    "Is there free shipping over a certain amount?",
                    "how much do you charge to ship to Italy",
                ],
            ),
            (
                "es",
                &[
                    "¿Cuánto cuesta el envío?",
                    "¿El envío es gratis?",
                    "gastos de envío",
                    "¿Cobran por la entrega?",
                    "¿Cuánto cobran por enviar a Italia?",
                    "¿Hay envío gratuito a partir de cierto importe?",
                    "precio del envío",
                ],
            ),
            (
                "it",
                &[
                    "Quanto costa la spedizione?",
                    "La spedizione è gratuita?",
                    "costi di spedizione",
                    "Quanto si paga per la consegna?",
                    "C'è la spedizione gratis sopra una certa cifra?",
                    "quanto costa spedire in Spagna",
                    "prezzo della spedizione",
                ],
            ),
        ],
    ),
    (
        "delivery_time",
        &[
            (
                "en",
                &[
                    "How long does delivery take?",
                    "When will my package arrive?",
                    "How many days for shipping?",
                    "delivery time",
                    "How fast do you ship?",
                    "Do you offer express delivery?",
                    "how long until I receive it",
                ],
            ),
            (
                "es",
                &[
                    "¿Cuánto tarda el envío?",
                    "¿Cuándo llega mi paquete?",
                    "¿Cuántos días tarda la entrega?",
                    "plazo de entrega",
                    "¿Tienen envío exprés?",
                    "¿En cuánto tiempo lo recibo?",
                    "tiempo de entrega",
                ],
            ),
            (
                "it",
                &[
                    "Quanto tempo ci vuole per la consegna?",
                    "Quando arriva il mio pacco?",
                    "Quanti giorni per la spedizione?",
                    "tempi di consegna",
                    "Avete la consegna espressa?",
                    "In quanto tempo lo ricevo?",
                    "quanto ci mette ad arrivare",
                ],
            ),
        ],
    ),
    (
        "order_status",
        &[
            (
                "en",
                &[
                    "Where is my order?",
                    "Track my order",
                    "What is the status of my order?",
                    "My order hasn't arrived yet",
                    "Has my order shipped?",
                    "tracking number",
                    "I haven't received my parcel",
                ],
            ),
            (
                "es",
                &[
                    "¿Dónde está mi pedido?",
                    "Quiero rastrear mi pedido",
                    "¿Cuál es el estado de mi pedido?",
                    "Mi pedido no ha llegado",
                    "¿Ya enviaron mi pedido?",
                    "número de seguimiento",
                    "no he recibido mi paquete",
                ],
            ),
            (
                "it",
                &[
                    "Dov'è il mio ordine?",
                    "Traccia il mio ordine",
                    "Qual è lo stato del mio ordine?",
                    "Il mio ordine non è ancora arrivato",
                    "Il mio ordine è stato spedito?",
                    "numero di tracciamento",
                    "non ho ricevuto il pacco",
                ],
            ),
        ],
    ),
    (
        "returns",
        &[
            (
                "en",
                &[
                    "How do I return an item?",
                    "I want to return my order",
                    "Can I exchange it for another size?",
                    "What is your return policy?",
                    "return a product",
                    "The shirt doesn't fit, can I send it back?",
                    "how many days do I have to return something",
                ],
            ),
            (
                "es",
                &[
                    "¿Cómo devuelvo un artículo?",
                    "Quiero devolver mi pedido",
                    "¿Puedo cambiarlo por otra talla?",
                    "¿Cuál es la política de devoluciones?",
                    "devolver un producto",
                    "La camisa no me queda, ¿puedo devolverla?",
                    "¿Cuántos días tengo para devolver algo?",
                ],
            ),
            (
                "it",
                &[
                    "Come faccio un reso?",
                    "Voglio restituire il mio ordine",
                    "Posso cambiarlo con un'altra taglia?",
                    "Qual è la vostra politica di reso?",
                    "restituire un prodotto",
                    "La camicia non mi sta, posso rimandarla indietro?",
                    "quanti giorni ho per fare un reso",
                ],
            ),
        ],
    ),
    (
        "refund",
        &[
            (
                "en",
                &[
                    "When will I get my money back?",
                    "Where is my refund?",
                    "I haven't received my refund",
                    "How long do refunds take?",
                    "refund status",
                    "Can I get a refund?",
                ],
            ),
            (
                "es",
                &[
                    "¿Cuándo me devuelven el dinero?",
                    "¿Dónde está mi reembolso?",
                    "No he recibido el reembolso",
                    "¿Cuánto tarda el reembolso?",
                    "estado del reembolso",
                    "¿Me pueden reembolsar?",
                ],
            ),
            (
                "it",
                &[
                    "Quando riavrò i miei soldi?",
                    "Dov'è il mio rimborso?",
                    "Non ho ricevuto il rimborso",
                    "Quanto tempo ci vuole per il rimborso?",
                    "stato del rimborso",
                    "Posso avere un rimborso?",
                ],
            ),
        ],
    ),
    (
        "payment_methods",
        &[
            (
                "en",
                &[
                    "What payment methods do you accept?",
                    "Can I pay with PayPal?",
                    "Do you take credit cards?",
                    "Can I pay cash on delivery?",
                    "payment options",
                    "Is Apple Pay accepted?",
                ],
            ),
            (
                "es",
                &[
                    "¿Qué métodos de pago aceptan?",
                    "¿Puedo pagar con PayPal?",
                    "¿Aceptan tarjeta de crédito?",
                    "¿Puedo pagar contra reembolso?",
                    "formas de pago",
                    "¿Se puede pagar con Bizum?",
                ],
            ),
            (
                "it",
                &[
                    "Quali metodi di pagamento accettate?",
                    "Posso pagare con PayPal?",
                    "Accettate carte di credito?",
                    "Posso pagare in contrassegno?",
                    "modalità di pagamento",
                    "Si può pagare con Satispay?",
                ],
            ),
        ],
    ),
    (
        "sizes",
        &[
            (
                "en",
                &[
                    "What size should I order?",
                    "Do you have a size guide?",
                    "How do your sizes run?",
                    "size chart",
                    "Do the jeans run small?",
                    "I'm usually a medium, which size fits me?",
                ],
            ),
            (
                "es",
                &[
                    "¿Qué talla debo pedir?",
                    "¿Tienen una guía de tallas?",
                    "tabla de tallas",
                    "¿Las tallas son pequeñas?",
                    "¿Los vaqueros tallan grande?",
                    "Normalmente uso una M, ¿qué talla me recomiendan?",
                ],
            ),
            (
                "it",
                &[
                    "Che taglia devo ordinare?",
                    "Avete una guida alle taglie?",
                    "tabella delle taglie",
                    "Le taglie sono piccole?",
                    "I jeans vestono stretti?",
                    "Di solito porto la M, che taglia mi consigliate?",
                ],
            ),
        ],
    ),
    (
        "human",
        &[
            (
                "en",
                &[
                    "I want to talk to a person",
                    "Can I speak to a human?",
                    "connect me with an agent",
                    "customer service please",
                    "I need to talk to someone",
                    "real person",
                ],
            ),
            (
                "es",
                &[
                    "Quiero hablar con una persona",
                    "¿Puedo hablar con un humano?",
                    "pásame con un agente",
                    "atención al cliente",
                    "necesito hablar con alguien",
                    "persona real",
                ],
            ),
            (
                "it",
                &[
                    "Voglio parlare con una persona",
                    "Posso parlare con un operatore?",
                    "mettimi in contatto con un operatore",
                    "servizio clienti",
                    "ho bisogno di parlare con qualcuno",
                    "persona vera",
                ],
            ),
        ],
    ),
    (
        "greeting",
        &[
            ("en", &["hello", "hi", "hi there", "good morning", "hey"]),
            (
                "es",
                &[
                    "hola",
                    "buenos días",
                    "buenas tardes",
                    "buenas",
                    "hola qué tal",
                ],
            ),
            (
                "it",
                &["ciao", "buongiorno", "buonasera", "salve", "ciao a tutti"],
            ),
        ],
    ),
];

/// The fixture intents (no patterns).
pub(crate) fn intents() -> Vec<TrainingIntent> {
    SPECS
        .iter()
        .map(|(id, langs)| TrainingIntent {
            id: (*id).to_owned(),
            examples: langs
                .iter()
                .flat_map(|(lang, texts)| {
                    texts.iter().map(move |t| Example {
                        language: (*lang).to_owned(),
                        text: (*t).to_owned(),
                    })
                })
                .collect(),
            patterns: Vec::new(),
        })
        .collect()
}

/// Held-out in-scope queries: (text, the customer's language, expected intent).
/// None of these texts is an example.
pub(crate) const IN_SCOPE: &[(&str, &str, &str)] = &[
    // English paraphrases and typos.
    ("wat time do yu open", "en", "opening_hours"),
    ("what r ur opening hours", "en", "opening_hours"),
    ("are you open tomorrow", "en", "opening_hours"),
    (
        "till what time are you open tonight?",
        "en",
        "opening_hours",
    ),
    ("opening times", "en", "opening_hours"),
    ("when do you close", "en", "opening_hours"),
    ("where is your shop", "en", "location"),
    ("what is the address of the store", "en", "location"),
    ("how can I find your shop", "en", "location"),
    ("how much does shipping cost", "en", "shipping_cost"),
    ("shiping price?", "en", "shipping_cost"),
    ("is delivery free", "en", "shipping_cost"),
    ("how long will shipping take", "en", "delivery_time"),
    ("when does my package arrive", "en", "delivery_time"),
    ("where is my oder", "en", "order_status"),
    ("my order still has not arrived", "en", "order_status"),
    ("track order", "en", "order_status"),
    ("i want to return these shoes", "en", "returns"),
    ("how do returns work", "en", "returns"),
    (
        "can i exchange the jacket for a bigger size",
        "en",
        "returns",
    ),
    ("when do i get my refund", "en", "refund"),
    ("still waiting for my money back", "en", "refund"),
    ("do you accept paypal", "en", "payment_methods"),
    ("can i pay by card", "en", "payment_methods"),
    ("which size should i buy", "en", "sizes"),
    ("size guide please", "en", "sizes"),
    ("let me talk to a real human", "en", "human"),
    ("i want an agent", "en", "human"),
    ("hello there", "en", "greeting"),
    // Spanish, with and without accents.
    ("a que hora abren", "es", "opening_hours"),
    ("horario de la tienda", "es", "opening_hours"),
    ("abren el domingo?", "es", "opening_hours"),
    ("donde estan ubicados", "es", "location"),
    ("cual es la direccion de la tienda", "es", "location"),
    ("cuanto cuesta enviar", "es", "shipping_cost"),
    ("el envio es gratuito?", "es", "shipping_cost"),
    ("cuanto tarda en llegar", "es", "delivery_time"),
    ("cuantos dias tarda el envio", "es", "delivery_time"),
    ("donde esta mi pedido", "es", "order_status"),
    ("mi pedido todavía no llegó", "es", "order_status"),
    ("como hago una devolucion", "es", "returns"),
    ("quiero cambiar la talla", "es", "returns"),
    ("cuando recibo mi reembolso", "es", "refund"),
    ("aceptan paypal", "es", "payment_methods"),
    ("puedo pagar con tarjeta", "es", "payment_methods"),
    ("que talla me pido", "es", "sizes"),
    ("quiero hablar con un humano", "es", "human"),
    ("hola buenas", "es", "greeting"),
    // Italian, with and without accents.
    ("a che ora aprite domani", "it", "opening_hours"),
    ("orari di apertura", "it", "opening_hours"),
    ("dove si trova il vostro negozio", "it", "location"),
    ("qual e l indirizzo", "it", "location"),
    ("quanto costa spedire", "it", "shipping_cost"),
    ("la spedizione e gratis?", "it", "shipping_cost"),
    (
        "quanti giorni ci vogliono per la consegna",
        "it",
        "delivery_time",
    ),
    ("dove e il mio ordine", "it", "order_status"),
    ("il mio pacco non e arrivato", "it", "order_status"),
    ("come posso restituire un articolo", "it", "returns"),
    ("voglio fare un reso", "it", "returns"),
    ("quando arriva il rimborso", "it", "refund"),
    ("accettate paypal", "it", "payment_methods"),
    ("posso pagare con la carta", "it", "payment_methods"),
    ("che taglia mi consigliate", "it", "sizes"),
    ("vorrei parlare con un operatore", "it", "human"),
    ("ciao!", "it", "greeting"),
];

/// Held-out out-of-scope messages: none of the intents answers them.
pub(crate) const OUT_OF_SCOPE: &[(&str, &str)] = &[
    ("purple elephant banana", "en"),
    ("asdkjh qwe", "en"),
    ("what is the weather like", "en"),
    ("can you recommend a good movie", "en"),
    ("i love pizza", "en"),
    ("do you sell gift cards", "en"),
    ("are you hiring", "en"),
    ("my cat is sick", "en"),
    ("who won the football match", "en"),
    ("tell me a joke", "en"),
    ("qué tiempo hace mañana", "es"),
    ("me gusta la pizza", "es"),
    ("venden tarjetas regalo", "es"),
    ("están contratando personal", "es"),
    ("cuéntame un chiste", "es"),
    ("mi gato está enfermo", "es"),
    ("che tempo fa domani", "it"),
    ("mi piace la pizza", "it"),
    ("vendete buoni regalo", "it"),
    ("raccontami una barzelletta", "it"),
    ("il mio gatto è malato", "it"),
    ("chi ha vinto la partita", "it"),
    // In the shop's domain, but no intent covers them.
    ("is this shirt made of cotton", "en"),
    ("do you have this dress in blue", "en"),
    ("can I order by phone", "en"),
    ("do you sell shoes for kids", "en"),
    ("my discount code does not work", "en"),
    ("¿tienen este vestido en azul?", "es"),
    ("¿la camisa es de algodón?", "es"),
    ("mi código de descuento no funciona", "es"),
    ("avete questo vestito in blu?", "it"),
    ("il codice sconto non funziona", "it"),
    ("zxcv bnm", "en"),
    ("lorem ipsum dolor sit amet", "en"),
];

/// Out-of-scope messages with nothing to do with a shop, for evaluating other
/// intent sets (the shop-related ones above may be in scope there).
pub(crate) const GENERAL_OUT_OF_SCOPE: &[(&str, &str)] = &[
    ("purple elephant banana", "en"),
    ("asdkjh qwe", "en"),
    ("what is the weather like", "en"),
    ("can you recommend a good movie", "en"),
    ("i love pizza", "en"),
    ("my cat is sick", "en"),
    ("who won the football match", "en"),
    ("tell me a joke", "en"),
    ("what is the capital of france", "en"),
    ("how do i bake bread", "en"),
    ("qué tiempo hace mañana", "es"),
    ("me gusta la pizza", "es"),
    ("cuéntame un chiste", "es"),
    ("mi gato está enfermo", "es"),
    ("quién ganó el partido", "es"),
    ("cómo se hace una tortilla", "es"),
    ("che tempo fa domani", "it"),
    ("mi piace la pizza", "it"),
    ("raccontami una barzelletta", "it"),
    ("il mio gatto è malato", "it"),
    ("chi ha vinto la partita", "it"),
    ("come si fa la pasta fresca", "it"),
    ("zxcv bnm", "en"),
    ("lorem ipsum dolor sit amet", "en"),
];
