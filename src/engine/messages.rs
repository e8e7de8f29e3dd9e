//! The bot's own sentences (not the shop's answers): the feedback question,
//! "did you mean", ticket notices, the rating question. Built in for English,
//! Spanish and Italian; every one can be overridden per language in
//! `[messages.<lang>]` of frontdesk.toml. Placeholders in braces are filled in
//! by the engine: `{ticket}`, `{eta}`, `{when}`, `{staff}`, `{text}`, `{note}`,
//! `{min}`, `{max}`, `{link}`, and in the time words `{time}`, `{day}`, `{date}`, `{n}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One language's set of the bot's sentences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    /// Asked under an answer.
    pub did_it_help: String,
    /// The \[Yes\] button.
    pub yes: String,
    /// The [No, talk to a person] button.
    pub no_person: String,
    /// Above the "did you mean" options.
    pub did_you_mean: String,
    /// The [Something else] button.
    pub something_else: String,
    /// A [Talk to a person] button.
    pub talk_to_person: String,
    /// Said when a ticket opens: `{ticket}`, `{eta}`.
    pub ticket_opened: String,
    /// Said when a ticket opens and the answer time runs past closing: `{ticket}`, `{when}`.
    pub ticket_opened_by: String,
    /// Said when a ticket opens while the shop is closed: `{ticket}`, `{when}` (the opening).
    pub ticket_opened_closed: String,
    /// Said once when the first-response target is missed: `{ticket}`.
    pub still_on_it: String,
    /// The ticket was closed because the customer did not answer: `{ticket}`.
    pub ticket_closed_no_reply: String,
    /// Said to a customer who writes while the ticket waits for staff: `{ticket}`.
    pub ticket_waiting: String,
    /// Staff claimed the ticket: `{staff}`, `{ticket}`.
    pub ticket_claimed: String,
    /// A staff reply relayed to the customer: `{staff}`, `{text}`.
    pub staff_reply: String,
    /// The ticket was resolved: `{ticket}`.
    pub ticket_resolved: String,
    /// The ticket was resolved with a note: `{ticket}`, `{note}`.
    pub ticket_resolved_note: String,
    /// The ticket was reopened: `{ticket}`.
    pub ticket_reopened: String,
    /// Glad the answer helped (before the rating question).
    pub glad_to_help: String,
    /// The CSAT question: `{min}`, `{max}`.
    pub rate_csat: String,
    /// The NPS question: `{min}`, `{max}`.
    pub rate_nps: String,
    /// A number outside the scale: `{min}`, `{max}`.
    pub rate_out_of_range: String,
    /// Thanks for the rating.
    pub rate_thanks: String,
    /// A detractor's rating: thanks and, once, "what went wrong?".
    pub rate_detractor: String,
    /// Thanks for the detractor's comment.
    pub comment_thanks: String,
    /// A promoter's rating: thanks.
    pub rate_promoter: String,
    /// A promoter's rating with the review invitation: `{link}`.
    pub rate_promoter_review: String,
    /// A photo, file, sticker …: the bot reads text only.
    pub non_text: String,
    /// An empty message.
    pub empty: String,
    /// A staff command typed by a customer.
    pub staff_only: String,
    /// A button that no longer applies.
    pub stale_button: String,
    /// `/forget`: what it deletes, and "are you sure?".
    pub forget_confirm: String,
    /// The [Yes, delete] button under `forget_confirm`.
    pub forget_yes: String,
    /// The [No, keep] button under `forget_confirm`.
    pub forget_no: String,
    /// What was deleted: `{conversations}`, `{ratings}`, `{tickets}` (counts).
    pub forget_done: String,
    /// The customer chose to keep their data.
    pub forget_kept: String,
    /// `/forget` from someone the shop holds nothing about.
    pub forget_nothing: String,
    /// An instant later today: `{time}`.
    pub today_at: String,
    /// An instant tomorrow: `{time}`.
    pub tomorrow_at: String,
    /// An instant within the week: `{day}`, `{time}`.
    pub weekday_at: String,
    /// An instant further away: `{day}`, `{date}` (YYYY-MM-DD), `{time}`.
    pub date_at: String,
    /// The weekday names, Monday first, separated by commas.
    pub weekdays: String,
    /// "1 minute" / "{n} minutes" / "1 hour" / "{n} hours" / "1 day" / "{n} days".
    pub minute: String,
    /// Plural minutes: `{n}`.
    pub minutes: String,
    /// One hour.
    pub hour: String,
    /// Plural hours: `{n}`.
    pub hours: String,
    /// One day.
    pub day: String,
    /// Plural days: `{n}`.
    pub days: String,
}

impl Messages {
    /// The built-in English sentences.
    pub fn english() -> Messages {
        Messages {
            did_it_help: "Did that answer your question?".into(),
            yes: "Yes".into(),
            no_person: "No, talk to a person".into(),
            did_you_mean: "I'm not sure I understood. Did you mean one of these?".into(),
            something_else: "Something else".into(),
            talk_to_person: "Talk to a person".into(),
            ticket_opened: "I've passed your message to our team (ticket #{ticket}). A person will answer you here, usually within {eta}.".into(),
            ticket_opened_by: "I've passed your message to our team (ticket #{ticket}). A person will answer you here by {when}.".into(),
            ticket_opened_closed: "I've passed your message to our team (ticket #{ticket}). We are closed now; we open {when} and will answer you then.".into(),
            still_on_it: "Sorry for the wait: our team is still on your request #{ticket} and will answer you here as soon as possible.".into(),
            ticket_closed_no_reply: "As we haven't heard back from you, I've closed your request #{ticket}. If you still need help, just write here and it will be reopened.".into(),
            ticket_waiting: "Added to your request #{ticket}. A person will answer you here.".into(),
            ticket_claimed: "{staff} from our team is looking at your request #{ticket} now.".into(),
            staff_reply: "{staff}: {text}".into(),
            ticket_resolved: "Your request #{ticket} has been resolved.".into(),
            ticket_resolved_note: "Your request #{ticket} has been resolved: {note}".into(),
            ticket_reopened: "Your request #{ticket} has been reopened. A person will answer you here.".into(),
            glad_to_help: "Glad I could help!".into(),
            rate_csat: "How satisfied are you with the help you got? Choose from {min} (not at all) to {max} (very).".into(),
            rate_nps: "How likely are you to recommend us to a friend? Choose from {min} (not at all) to {max} (very likely).".into(),
            rate_out_of_range: "Please choose a number from {min} to {max}.".into(),
            rate_thanks: "Thank you for your rating!".into(),
            rate_detractor: "Thank you for your rating. We're sorry we didn't do better: what went wrong? Your answer goes straight to our team.".into(),
            comment_thanks: "Thank you for telling us. Our team will read it and learn from it.".into(),
            rate_promoter: "Thank you for your rating! We're glad we could help.".into(),
            rate_promoter_review: "Thank you for your rating! We're glad we could help. If you have a moment, we'd be grateful if you recommended us here: {link}".into(),
            non_text: "I can only read text here; a person will look at what you sent.".into(),
            empty: "I didn't catch any text. What can I help you with?".into(),
            staff_only: "Sorry, that command is only for our staff. How can I help you?".into(),
            stale_button: "That button has expired. Just write your question and I'll help.".into(),
            forget_confirm: "This deletes your conversations with us, your ratings and your name. Open requests are closed; requests keep only their times, without your messages. It cannot be undone. Delete everything? (You can also type /forget yes.)".into(),
            forget_yes: "Yes, delete everything".into(),
            forget_no: "No, keep it".into(),
            forget_done: "Done: I deleted {conversations} conversation(s), {ratings} rating(s) and your name; {tickets} request(s) keep only their times. If you write again, you start as a new customer.".into(),
            forget_kept: "OK, nothing was deleted.".into(),
            forget_nothing: "We have nothing stored about you.".into(),
            today_at: "today at {time}".into(),
            tomorrow_at: "tomorrow at {time}".into(),
            weekday_at: "{day} at {time}".into(),
            date_at: "{day} {date} at {time}".into(),
            weekdays: "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday".into(),
            minute: "1 minute".into(),
            minutes: "{n} minutes".into(),
            hour: "1 hour".into(),
            hours: "{n} hours".into(),
            day: "1 day".into(),
            days: "{n} days".into(),
        }
    }

    /// The built-in Spanish sentences.
    pub fn spanish() -> Messages {
        Messages {
            did_it_help: "¿Eso responde a tu pregunta?".into(),
            yes: "Sí".into(),
            no_person: "No, hablar con una persona".into(),
            did_you_mean: "No estoy seguro de haberte entendido. ¿Te refieres a una de estas?".into(),
            something_else: "Otra cosa".into(),
            talk_to_person: "Hablar con una persona".into(),
            ticket_opened: "He pasado tu mensaje a nuestro equipo (ticket #{ticket}). Una persona te responderá aquí, normalmente en menos de {eta}.".into(),
            ticket_opened_by: "He pasado tu mensaje a nuestro equipo (ticket #{ticket}). Una persona te responderá aquí {when} como muy tarde.".into(),
            ticket_opened_closed: "He pasado tu mensaje a nuestro equipo (ticket #{ticket}). Ahora estamos cerrados; abrimos {when} y te responderemos entonces.".into(),
            still_on_it: "Perdona la espera: nuestro equipo sigue con tu solicitud #{ticket} y te responderá aquí lo antes posible.".into(),
            ticket_closed_no_reply: "Como no hemos vuelto a saber de ti, he cerrado tu solicitud #{ticket}. Si aún necesitas ayuda, escribe aquí y se reabrirá.".into(),
            ticket_waiting: "Añadido a tu solicitud #{ticket}. Una persona te responderá aquí.".into(),
            ticket_claimed: "{staff} de nuestro equipo está atendiendo tu solicitud #{ticket}.".into(),
            staff_reply: "{staff}: {text}".into(),
            ticket_resolved: "Tu solicitud #{ticket} se ha resuelto.".into(),
            ticket_resolved_note: "Tu solicitud #{ticket} se ha resuelto: {note}".into(),
            ticket_reopened: "Tu solicitud #{ticket} se ha reabierto. Una persona te responderá aquí.".into(),
            glad_to_help: "¡Me alegra haber ayudado!".into(),
            rate_csat: "¿Qué tan satisfecho estás con la ayuda recibida? Elige de {min} (nada) a {max} (mucho).".into(),
            rate_nps: "¿Qué probabilidad hay de que nos recomiendes a un amigo? Elige de {min} (ninguna) a {max} (muy probable).".into(),
            rate_out_of_range: "Por favor, elige un número del {min} al {max}.".into(),
            rate_thanks: "¡Gracias por tu valoración!".into(),
            rate_detractor: "Gracias por tu valoración. Sentimos no haberlo hecho mejor: ¿qué ha fallado? Tu respuesta llega directamente a nuestro equipo.".into(),
            comment_thanks: "Gracias por contárnoslo. Nuestro equipo lo leerá y aprenderá de ello.".into(),
            rate_promoter: "¡Gracias por tu valoración! Nos alegra haberte ayudado.".into(),
            rate_promoter_review: "¡Gracias por tu valoración! Nos alegra haberte ayudado. Si tienes un momento, te agradeceríamos que nos recomendaras aquí: {link}".into(),
            non_text: "Aquí solo puedo leer texto; una persona revisará lo que has enviado.".into(),
            empty: "No he recibido texto. ¿En qué puedo ayudarte?".into(),
            staff_only: "Lo siento, ese comando es solo para nuestro equipo. ¿En qué puedo ayudarte?".into(),
            stale_button: "Ese botón ya no está activo. Escribe tu pregunta y te ayudo.".into(),
            forget_confirm: "Esto borra tus conversaciones con nosotros, tus valoraciones y tu nombre. Las solicitudes abiertas se cierran; las solicitudes conservan solo sus horas, sin tus mensajes. No se puede deshacer. ¿Lo borro todo? (También puedes escribir /forget yes.)".into(),
            forget_yes: "Sí, borrar todo".into(),
            forget_no: "No, conservarlo".into(),
            forget_done: "Hecho: he borrado {conversations} conversación(es), {ratings} valoración(es) y tu nombre; {tickets} solicitud(es) conservan solo sus horas. Si vuelves a escribir, empiezas como cliente nuevo.".into(),
            forget_kept: "De acuerdo, no se ha borrado nada.".into(),
            forget_nothing: "No tenemos nada guardado sobre ti.".into(),
            today_at: "hoy a las {time}".into(),
            tomorrow_at: "mañana a las {time}".into(),
            weekday_at: "el {day} a las {time}".into(),
            date_at: "el {day} {date} a las {time}".into(),
            weekdays: "lunes,martes,miércoles,jueves,viernes,sábado,domingo".into(),
            minute: "1 minuto".into(),
            minutes: "{n} minutos".into(),
            hour: "1 hora".into(),
            hours: "{n} horas".into(),
            day: "1 día".into(),
            days: "{n} días".into(),
        }
    }

    /// The built-in Italian sentences.
    pub fn italian() -> Messages {
        Messages {
            did_it_help: "Ho risposto alla tua domanda?".into(),
            yes: "Sì".into(),
            no_person: "No, parlare con una persona".into(),
            did_you_mean: "Non sono sicuro di aver capito. Intendevi una di queste?".into(),
            something_else: "Altro".into(),
            talk_to_person: "Parlare con una persona".into(),
            ticket_opened: "Ho passato il tuo messaggio al nostro team (ticket #{ticket}). Una persona ti risponderà qui, di solito entro {eta}.".into(),
            ticket_opened_by: "Ho passato il tuo messaggio al nostro team (ticket #{ticket}). Una persona ti risponderà qui entro {when}.".into(),
            ticket_opened_closed: "Ho passato il tuo messaggio al nostro team (ticket #{ticket}). Ora siamo chiusi; apriamo {when} e ti risponderemo allora.".into(),
            still_on_it: "Scusa l'attesa: il nostro team sta ancora seguendo la tua richiesta #{ticket} e ti risponderà qui il prima possibile.".into(),
            ticket_closed_no_reply: "Non avendo più tue notizie, ho chiuso la tua richiesta #{ticket}. Se hai ancora bisogno di aiuto, scrivi qui e verrà riaperta.".into(),
            ticket_waiting: "Aggiunto alla tua richiesta #{ticket}. Una persona ti risponderà qui.".into(),
            ticket_claimed: "{staff} del nostro team sta seguendo la tua richiesta #{ticket}.".into(),
            staff_reply: "{staff}: {text}".into(),
            ticket_resolved: "La tua richiesta #{ticket} è stata risolta.".into(),
            ticket_resolved_note: "La tua richiesta #{ticket} è stata risolta: {note}".into(),
            ticket_reopened: "La tua richiesta #{ticket} è stata riaperta. Una persona ti risponderà qui.".into(),
            glad_to_help: "Sono contento di esserti stato utile!".into(),
            rate_csat: "Quanto sei soddisfatto dell'aiuto ricevuto? Scegli da {min} (per niente) a {max} (molto).".into(),
            rate_nps: "Quanto è probabile che ci consiglieresti a un amico? Scegli da {min} (per niente) a {max} (molto probabile).".into(),
            rate_out_of_range: "Per favore scegli un numero da {min} a {max}.".into(),
            rate_thanks: "Grazie per la tua valutazione!".into(),
            rate_detractor: "Grazie per la tua valutazione. Ci dispiace non aver fatto di meglio: cosa non è andato? La tua risposta arriva direttamente al nostro team.".into(),
            comment_thanks: "Grazie per avercelo detto. Il nostro team lo leggerà e ne farà tesoro.".into(),
            rate_promoter: "Grazie per la tua valutazione! Siamo contenti di esserti stati utili.".into(),
            rate_promoter_review: "Grazie per la tua valutazione! Siamo contenti di esserti stati utili. Se hai un momento, ti saremmo grati se ci consigliassi qui: {link}".into(),
            non_text: "Qui posso leggere solo testo; una persona guarderà ciò che hai inviato.".into(),
            empty: "Non ho ricevuto testo. Come posso aiutarti?".into(),
            staff_only: "Mi dispiace, quel comando è riservato al nostro staff. Come posso aiutarti?".into(),
            stale_button: "Quel pulsante non è più attivo. Scrivi la tua domanda e ti aiuto.".into(),
            forget_confirm: "Questo cancella le tue conversazioni con noi, le tue valutazioni e il tuo nome. Le richieste aperte vengono chiuse; le richieste conservano solo i loro orari, senza i tuoi messaggi. Non si può annullare. Cancello tutto? (Puoi anche scrivere /forget yes.)".into(),
            forget_yes: "Sì, cancella tutto".into(),
            forget_no: "No, conserva".into(),
            forget_done: "Fatto: ho cancellato {conversations} conversazione/i, {ratings} valutazione/i e il tuo nome; {tickets} richiesta/e conservano solo i loro orari. Se scrivi di nuovo, ricominci come nuovo cliente.".into(),
            forget_kept: "Va bene, non è stato cancellato niente.".into(),
            forget_nothing: "Non abbiamo niente di salvato su di te.".into(),
            today_at: "oggi alle {time}".into(),
            tomorrow_at: "domani alle {time}".into(),
            weekday_at: "{day} alle {time}".into(),
            date_at: "{day} {date} alle {time}".into(),
            weekdays: "lunedì,martedì,mercoledì,giovedì,venerdì,sabato,domenica".into(),
            minute: "1 minuto".into(),
            minutes: "{n} minuti".into(),
            hour: "1 ora".into(),
            hours: "{n} ore".into(),
            day: "1 giorno".into(),
            days: "{n} giorni".into(),
        }
    }

    /// The built-in set for `language`, if there is one.
    pub fn builtin(language: &str) -> Option<Messages> {
        match language {
            "en" => Some(Messages::english()),
            "es" => Some(Messages::spanish()),
            "it" => Some(Messages::italian()),
            _ => None,
        }
    }

    /// The names of every sentence, as used in `[messages.<lang>]`.
    pub fn field_names() -> Vec<String> {
        match serde_json::to_value(Messages::english()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `name` is a sentence name.
    pub fn is_field(name: &str) -> bool {
        Messages::field_names().iter().any(|f| f == name)
    }

    /// The built-in set for `language` (or `base` when there is none) with `overrides` applied.
    pub fn with_overrides(
        language: &str,
        base: &Messages,
        overrides: Option<&BTreeMap<String, String>>,
    ) -> Messages {
        let start = Messages::builtin(language).unwrap_or_else(|| base.clone());
        let Some(overrides) = overrides.filter(|o| !o.is_empty()) else {
            return start;
        };
        let Ok(serde_json::Value::Object(mut map)) = serde_json::to_value(&start) else {
            return start;
        };
        for (k, v) in overrides {
            if map.contains_key(k) {
                map.insert(k.clone(), serde_json::Value::String(v.clone()));
            }
        }
        serde_json::from_value(serde_json::Value::Object(map)).unwrap_or(start)
    }

    /// An instant as the customer reads it, seen from `now`, both in the shop's
    /// time zone: "today at 15:00", "tomorrow at 9:00", "Monday at 9:00".
    pub fn when(&self, now: &jiff::ZonedDateTime, at: &jiff::ZonedDateTime) -> String {
        let time = format!("{}:{:02}", at.hour(), at.minute());
        let (today, day) = (now.date(), at.date());
        let names: Vec<&str> = self.weekdays.split(',').map(str::trim).collect();
        let index = day.weekday().to_monday_zero_offset() as usize;
        let day_name = names
            .get(index)
            .map(|n| n.to_string())
            .unwrap_or_else(|| format!("{:?}", day.weekday()));
        let within_week = today
            .checked_add(jiff::SignedDuration::from_hours(24 * 6))
            .is_ok_and(|limit| day <= limit);
        if day <= today {
            fill(&self.today_at, &[("time", &time)])
        } else if today.tomorrow().is_ok_and(|t| t == day) {
            fill(&self.tomorrow_at, &[("time", &time)])
        } else if within_week {
            fill(&self.weekday_at, &[("day", &day_name), ("time", &time)])
        } else {
            fill(
                &self.date_at,
                &[
                    ("day", &day_name),
                    ("date", &day.to_string()),
                    ("time", &time),
                ],
            )
        }
    }

    /// "45 minutes", "1 hour", "2 days": the duration rounded to its largest whole unit.
    pub fn duration(&self, seconds: u64) -> String {
        let (one, many, n) =
            if seconds >= 86_400 && seconds.is_multiple_of(86_400) || seconds >= 2 * 86_400 {
                (&self.day, &self.days, seconds.div_ceil(86_400))
            } else if seconds >= 3600 && seconds.is_multiple_of(3600) || seconds >= 3 * 3600 {
                (&self.hour, &self.hours, seconds.div_ceil(3600))
            } else {
                (&self.minute, &self.minutes, seconds.div_ceil(60).max(1))
            };
        if n == 1 {
            one.clone()
        } else {
            many.replace("{n}", &n.to_string())
        }
    }
}

/// Fill `{name}` placeholders.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_language_has_every_field() {
        // Serialising and deserialising through the struct proves completeness;
        // here we check that the translations are not accidentally English.
        let en = Messages::english();
        for m in [Messages::spanish(), Messages::italian()] {
            assert_ne!(m.did_it_help, en.did_it_help);
            assert!(m.ticket_opened.contains("{ticket}") && m.ticket_opened.contains("{eta}"));
        }
        assert!(Messages::is_field("did_it_help"));
        assert!(!Messages::is_field("nope"));
    }

    #[test]
    fn overrides_apply_per_language() {
        let mut o = BTreeMap::new();
        o.insert("yes".to_string(), "Claro".to_string());
        let m = Messages::with_overrides("es", &Messages::english(), Some(&o));
        assert_eq!(m.yes, "Claro");
        assert_eq!(m.no_person, Messages::spanish().no_person);
        // A language without built-ins starts from the base.
        let fr = Messages::with_overrides("fr", &Messages::english(), None);
        assert_eq!(fr, Messages::english());
    }

    #[test]
    fn durations_read_naturally() {
        let en = Messages::english();
        assert_eq!(en.duration(3600), "1 hour");
        assert_eq!(en.duration(1800), "30 minutes");
        assert_eq!(en.duration(5400), "90 minutes");
        assert_eq!(en.duration(4 * 3600), "4 hours");
        assert_eq!(en.duration(86_400), "1 day");
        assert_eq!(en.duration(1), "1 minute");
        assert_eq!(Messages::italian().duration(7200), "2 ore");
    }

    #[test]
    fn instants_read_relative_to_now() {
        let tz = jiff::tz::TimeZone::get("Europe/Madrid").unwrap();
        let at = |s: &str| {
            s.parse::<jiff::Timestamp>()
                .unwrap()
                .to_zoned_datetime(tz.clone())
        };
        // Saturday 2026-01-10 15:00 local.
        let now = at("2026-01-10T14:00:00Z");
        let en = Messages::english();
        assert_eq!(en.when(&now, &at("2026-01-10T16:30:00Z")), "today at 17:30");
        assert_eq!(
            en.when(&now, &at("2026-01-11T08:00:00Z")),
            "tomorrow at 9:00"
        );
        assert_eq!(en.when(&now, &at("2026-01-12T08:00:00Z")), "Monday at 9:00");
        assert_eq!(
            en.when(&now, &at("2026-01-19T08:00:00Z")),
            "Monday 2026-01-19 at 9:00"
        );
        assert_eq!(
            Messages::spanish().when(&now, &at("2026-01-12T08:00:00Z")),
            "el lunes a las 9:00"
        );
        assert_eq!(
            Messages::italian().when(&now, &at("2026-01-12T08:00:00Z")),
            "lunedì alle 9:00"
        );
    }

    #[test]
    fn fill_replaces_placeholders() {
        assert_eq!(
            fill("#{ticket} in {eta}", &[("ticket", "3"), ("eta", "1 hour")]),
            "#3 in 1 hour"
        );
    }
}
